import { hostname } from "node:os";
import type { Tracer } from "@opentelemetry/api";
import { type Bus, SoloBus } from "../cluster/bus.js";
import { busKey } from "../cluster/bus-auth.js";
import type { ConfigOverrides, SpoolConfig } from "../config/config.js";
import { createCore } from "../core/index.js";
import { builtinPlugins } from "../features/index.js";
import type { Logger } from "../logger.js";
import { Meter, observeAll } from "../ops/meter.js";
import { startTracing, type Tracing } from "../ops/tracing-setup.js";
import { importPlugin, PluginHost } from "../plugins/host.js";
import type { Plugin } from "../plugins/plugin.js";
import { RpcHost } from "../rpc/rpc-host.js";
import { createMemoryTransportPair } from "../rpc/transport.js";
import { EmbeddedRunners } from "../runners/local/embedded.js";
import type { ProcessRegistry } from "../runners/local/orphans.js";
import { loadMigrations, type MigrationSet, migrateToLatest } from "../store/migrator.js";
import type { PostgresStore } from "../store/postgres/postgres.js";
import { createRepositories } from "../store/repositories.js";
import { onCheckpointHold, openStore, type SqliteStore, type Store, type StoreOptions } from "../store/sqlite/database.js";

export interface StartOptions extends ConfigOverrides {
  /** Plugins added after the built-in ones and those named in the configuration. */
  plugins?: string[];
  extraPlugins?: Plugin[];
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /** The schema's migrations (those of migrations/, compiled into dist/migrations) unless given: tests give broken ones. */
  migrations?: MigrationSet;
  /** Storage tuning (the WAL's size after checkpoints); tests make it small. */
  store?: StoreOptions;
  /**
   * Traces each proposal with this tracer (tests: the SDK's in-memory exporter). Without it, a tracer is set up
   * only when the environment asks for one (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER): src/ops/tracing-setup.ts.
   */
  tracer?: Tracer;
}

/** The store (SQLite, or PostgreSQL when configured) with every migration applied; closed again if one fails. */
export async function openStorage(
  options: StartOptions,
  config: SpoolConfig,
  log: Logger,
): Promise<{ store: Store; schema: MigrationSet; migrations: string[] }> {
  // The PostgreSQL store and bus are loaded only for a PostgreSQL database: a SQLite server never runs them, and every
  // module loaded stays in V8's heap (its source text and functions), which the old generation's growth multiplies.
  const store: Store = config.databaseUrl
    ? await (await import("../store/postgres/postgres.js")).openPostgresStore(config.databaseUrl)
    : openStore(config.dbFile, {
        ...options.store,
        onCheckpointerError: (error) =>
          log.warn(`database: the WAL's checkpoint worker ended (${error.message}); SQLite's own checkpoints keep the WAL bounded until a restart`),
      });
  let migrations: string[];
  let schema: MigrationSet;
  try {
    schema = options.migrations ?? (await loadMigrations());
    const results = await migrateToLatest(store, schema);
    migrations = results.filter((r) => r.status === "Success").map((r) => r.migrationName);
    // One line, however many: a first start applies them all.
    if (migrations.length > 0)
      log.info(
        `database: applied ${migrations.length} migration${migrations.length === 1 ? "" : "s"} (${[migrations[0], migrations.at(-1)].filter((m, i, a) => a.indexOf(m) === i).join(" … ")})`,
      );
  } catch (error) {
    await store.close();
    throw error;
  }
  return { store, schema, migrations };
}

/** The services wired on the store: this server's row and bus, metrics and traces, the core, the RPC host, the plugins. */
export async function wireServices(options: StartOptions, config: SpoolConfig, log: Logger, token: string, processes: ProcessRegistry, store: Store) {
  // The one place services are wired together: store → core → plugins, and the RPC host in front.
  const repos = createRepositories(store);
  // This server among those sharing the database: a row of its own, and a bus to the others (PostgreSQL only).
  const serverId = await repos.cluster.registerServer({ url: "", host: hostname(), pid: process.pid });
  // Its rows are signed with a key derived from the token, which the servers sharing the database share.
  const bus: Bus =
    store.kind === "postgres"
      ? new (await import("../cluster/postgres-bus.js")).PostgresBus(config.databaseUrl!, (store as PostgresStore).pool, serverId, log, {
          key: busKey(token),
        })
      : new SoloBus(serverId);
  let plugins!: PluginHost;
  const notifyProject = (projectId: number, method: string, params: unknown) => {
    rpc.notifyProject(projectId, method, params);
    if (bus.shared) bus.publish({ t: "notify", project: projectId, method, params });
  };
  // Counted on the core's path in O(1); everything else /metrics reports is read when it is scraped.
  const meter = new Meter();
  if (store.kind === "sqlite") onCheckpointHold(store as SqliteStore, (ms) => meter.held(ms));
  // Traces only when asked for: the SDK, the exporter and the tracer's module are not even loaded otherwise.
  const env = options.env ?? process.env;
  let tracing: Tracing | null = null;
  try {
    tracing = options.tracer ? null : await startTracing(env);
  } catch (error) {
    await store.close();
    throw error;
  }
  const tracer = options.tracer ?? tracing?.tracer;
  const proposalTracer = tracer
    ? new (await import("../ops/tracing.js")).ProposalTracer(tracer, {
        commandText: ["1", "on", "true", "yes"].includes((env.SPOOL_TRACE_COMMANDS ?? "").toLowerCase()),
      })
    : null;
  const core = createCore({
    observer: observeAll(meter, proposalTracer),
    repos,
    config,
    log,
    bus,
    notifyProject,
    notifyLocal: (projectId, method, params) => rpc.notifyProject(projectId, method, params),
    emit: (hook, payload) => plugins.emit(hook, payload),
    applyFilter: (name, value) => plugins.applyFilter(name, value),
  });
  const rpc: RpcHost = new RpcHost(log, {
    maxOrderedInFlight: config.limits.maxUnackedChunks,
    maxBatchSize: config.limits.maxBatchSize,
    maxRequestsInFlight: config.limits.maxRequestsInFlight,
    maxOutboundBytes: config.limits.maxOutboundBytes,
    maxClientMemoryBytes: config.limits.maxClientMemoryBytes,
    context: () => ({ core, services: plugins }),
    authorizeOwnRun: (def, params, connection) => core.principals.requireOwnRun(def.name, params, connection),
    connectionOpened: (connection) => void plugins.emit("connection:opened", { connection }),
    connectionClosed: (connection) => {
      core.lifecycle.connectionClosed(connection);
      void plugins.emit("connection:closed", { connection });
    },
  });
  const connectInProcess = () => {
    const [serverSide, clientSide] = createMemoryTransportPair();
    return { transport: clientSide, connectionId: rpc.accept(serverSide).id };
  };
  if (config.localRunner)
    core.runners.setEmbedded(
      new EmbeddedRunners(connectInProcess, log, processes, { maxChunkBytes: config.limits.maxChunkBytes, egressHosts: config.egress.hosts }),
    );
  plugins = new PluginHost(rpc, core, config, log, connectInProcess, notifyProject);
  try {
    const external = await Promise.all(config.plugins.map((spec) => importPlugin(spec, config.home)));
    await plugins.load([...builtinPlugins, ...external, ...(options.extraPlugins ?? [])]);
  } catch (error) {
    await store.close();
    throw error;
  }
  rpc.install();
  plugins.markStarted();
  return { repos, serverId, bus, meter, tracing, core, rpc, plugins, connectInProcess };
}

export type Services = Awaited<ReturnType<typeof wireServices>>;
