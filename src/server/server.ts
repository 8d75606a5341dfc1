import { existsSync, rmdirSync } from "node:fs";
import type { Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import type { WebSocketServer } from "ws";
import { ensureToken, isLoopback } from "../auth.js";
import { unixEndpoint } from "../client/server-proof.js";
import { unixSocketUrl } from "../client/ws-transport.js";
import { loadConfig, type SpoolConfig } from "../config/config.js";
import { serverState } from "../core/runners/dispatch.js";
import { entryGet } from "../features/entries/get.js";
import { checkHomeOutsideProjects, HomeSeen } from "../home/in-project.js";
import { acquireHomeLock, type HomeLock } from "../home/lock.js";
import { checkHomeOwned } from "../home/owner.js";
import { recordStatePaths } from "../home/registry.js";
import { checkHomeOutsideViews } from "../home/views.js";
import { createLogger, type Logger } from "../logger.js";
import { removeServerFacts, SERVER_FACTS_FILE, serverFacts, writeServerFacts } from "../ops/server-facts.js";
import { warmEntryGet } from "../ops/warm-up.js";
import type { PluginHost } from "../plugins/host.js";
import type { RpcHost } from "../rpc/rpc-host.js";
import type { Transport } from "../rpc/transport.js";
import { openProcessRegistry } from "../runners/local/orphans.js";
import type { Store } from "../store/store.js";
import { type Address, credentialsFront, type Front } from "./front.js";
import { httpFront } from "./http.js";
import { openStorage, type Services, type StartOptions, wireServices } from "./services.js";
import { closeUnix, closingHandshakes, listenUnix } from "./transports.js";

export { MIGRATIONS_DIR } from "../store/migrator.js";
export { refusedOrigin } from "./front.js";
export type { StartOptions } from "./services.js";

export interface SpoolServer {
  readonly config: SpoolConfig;
  /** The TCP URL (ws://HOST:PORT/): browsers, and clients that name it (the server proves itself there first). */
  readonly url: string;
  /** The home's Unix socket as a URL (ws+unix://…/spool.sock:/), local clients' default; null when the home has none. */
  readonly localUrl: string | null;
  readonly port: number;
  readonly token: string;
  readonly store: Store;
  readonly plugins: PluginHost;
  readonly rpc: RpcHost;
  /** Migrations this start applied (none when the database was up to date). */
  readonly migrations: readonly string[];
  /** An authenticated in-process transport to this server (tests, embedded runners). */
  connectInProcess(): Transport;
  stop(): Promise<void>;
}

/**
 * Starts a Spool server: the home's lock, store, migrations, plugins, then the WebSocket listener.
 * A second server on the same home throws HomeLocked, naming the process that holds it, before it touches anything.
 */
export async function startServer(options: StartOptions = {}): Promise<SpoolServer> {
  const config = loadConfig(options, options.env);
  // Before anything is made in it: a home in a project is in the view of that project's sandboxed commands.
  checkHomeOutsideProjects(config.home, options.env ?? process.env);
  // Before the lock is written into it, a token read or a plugin loaded: the home and all it holds are this user's alone.
  checkHomeOwned(
    {
      home: config.home,
      configFile: join(config.home, "config.json"),
      tokenFile: config.tokenFile,
      socketPath: config.socketPath,
      dbFile: config.dbFile,
      plugins: config.plugins,
    },
    (message) => (options.logger ?? createLogger()).warn(message),
  );
  const made = !existsSync(config.home);
  const lock = acquireHomeLock(config.home);
  // Every sandbox built on this machine hides this server's state, not only the sandboxes of its own runners (issue 54):
  // recorded once the home is there (a recorded path counts where it exists).
  recordStatePaths(serverState(config).concat(config.socketPath));
  try {
    // Then, before a token or a database is made in it, no sandboxed command running now may see it (home/views.ts:
    // recorded first, so of this home and a command started together one sees the other).
    checkHomeOutsideViews(config.home);
    return await startLocked(options, config, lock);
  } catch (error) {
    lock.release();
    // A home this start made and refused goes again (empty: its lock was its one file).
    if (made && error instanceof HomeSeen) removeEmpty(config.home);
    throw error;
  }
}

/**
 * A start, as the story of its stages: the home's token and the processes a killed predecessor left, the store and
 * its migrations, the services wired on it (core, RPC, plugins), the doors in front of them (credentials, HTTP,
 * WebSocket, /mcp, the page), then listening and telling the others; `stop` undoes it in the reverse order.
 */
async function startLocked(options: StartOptions, config: SpoolConfig, lock: HomeLock): Promise<SpoolServer> {
  const log = options.logger ?? createLogger();
  const token = ensureToken(config.tokenFile);
  // Before anything else: kill the commands a previous incarnation's embedded runner left running when it was killed without warning.
  const processes = await openProcessRegistry(join(config.home, "processes"), log);
  const { store, schema, migrations } = await openStorage(options, config, log);
  const services = await wireServices(options, config, log, token, processes, store);
  const address: Address = { port: config.port, url: "", localUrl: null, unixEndpoint: null };
  const front = credentialsFront(config, log, token, services, address);
  const http = httpFront(config, log, token, { store, schema, lock }, services, front, address);
  const unix = await goLive(config, log, services, http.server, address, store);
  const stop = stopper(config, log, lock, store, services, front, http, unix);
  return {
    config,
    url: address.url,
    localUrl: address.localUrl,
    port: address.port,
    token,
    store,
    plugins: services.plugins,
    rpc: services.rpc,
    migrations,
    connectInProcess: () => services.connectInProcess().transport,
    stop,
  };
}

/** Listens (TCP, then the home's socket), tells the servers sharing the database, starts what runs in the background. */
async function goLive(config: SpoolConfig, log: Logger, services: Services, http: HttpServer, address: Address, store: Store) {
  const { repos, serverId, bus, core, plugins } = services;
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(config.port, config.host, () => resolve());
  });
  address.port = (http.address() as AddressInfo).port;
  const unix = await listenUnix(http, config.socketPath, log);
  address.localUrl = unix ? unixSocketUrl(config.socketPath) : null;
  address.unixEndpoint = unix ? unixEndpoint(config.socketPath) : null;
  const hostForUrl = config.host.includes(":") ? `[${config.host}]` : config.host;
  address.url = `ws://${hostForUrl}:${address.port}/`;
  const { port, url } = address;
  if (!isLoopback(config.host)) {
    log.warn(`listening on ${config.host}, which is not a loopback address: anyone who can reach it and holds the token can run commands`);
  }
  await repos.cluster.setServerUrl(serverId, url);
  await bus.start(core.cluster.handlers());
  await core.lifecycle.adoptOrphans();
  // Commands queued for a pool (before a restart too) are taken as runners attach and free up; this looks besides.
  core.lifecycle.claims.start();
  // Links in notifications open the page where this server serves it (bound to every address: by the machine's name).
  core.notifications.setPageBase(`http://${config.host === "0.0.0.0" || config.host === "::" ? hostname() : hostForUrl}:${port}/`);
  core.notifications.start();
  await core.deadlines.start();
  await plugins.emit("server:started", { url });
  // The first tail or slice after a start compiles nothing (ops/warm-up.ts), after the start's own work; a warm-up
  // that fails only leaves that work to the first read.
  setImmediate(() => void warmEntryGet(entryGet, core.entries).catch(() => {}));
  // What `spool doctor` describes: how this server was started (its flags are nowhere else).
  try {
    writeServerFacts(config.home, serverFacts(config, { port, url, socket: unix ? config.socketPath : null }));
  } catch (error) {
    log.warn(`could not write ${SERVER_FACTS_FILE} in ${config.home} (spool doctor reads it)`, error);
  }
  log.info(`server: started on ${url}`, { pid: process.pid, database: store.kind });
  return unix;
}

/** Stops what the start started, in the reverse order, once. */
function stopper(
  config: SpoolConfig,
  log: Logger,
  lock: HomeLock,
  store: Store,
  services: Services,
  front: Front,
  doors: { server: HttpServer; wss: WebSocketServer },
  unix: Awaited<ReturnType<typeof listenUnix>>,
): () => Promise<void> {
  const { bus, core, rpc, plugins, tracing } = services;
  const { sessions } = front;
  const { server: http, wss } = doors;
  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      log.info("server: stopping", { pid: process.pid });
      http.close();
      sessions.clear();
      closeUnix(unix, config.socketPath);
      await front.mcp.close();
      await front.acp.close();
      await plugins.emit("server:stopping", {});
      await core.lifecycle.stop();
      core.deadlines.stop();
      await core.notifications.stop();
      for (const connection of [...rpc.connections]) connection.close(1001, "server shutting down");
      // Each client answers the close before its socket goes: one dropped at once loses what it has not read yet,
      // the close frame included, as soon as it writes (it sees 1006, not why).
      await closingHandshakes(wss);
      for (const client of wss.clients) client.terminate();
      await rpc.idle(5_000);
      core.cluster.stop();
      await bus.close();
      await core.activityWrites.stop();
      await store.close();
      await tracing?.shutdown().catch((error: unknown) => log.warn("traces: the exporter's last flush failed", error));
      removeServerFacts(config.home);
      lock.release();
      http.closeAllConnections?.();
    })());

  return stop;
}

/** Removes `dir` when it is empty; leaves it otherwise. */
function removeEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty, or gone
  }
}
