import { createServer, type Server as HttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Tracer } from "@opentelemetry/api";
import { WebSocketServer } from "ws";
import type { AcpHttpEndpoint, AcpHttpOptions } from "./acp/http.js";
import {
  cookieValue,
  ensureToken,
  isLoopback,
  originAllowed,
  ownOrigin,
  presentedSessionKey,
  presentedToken,
  SUBPROTOCOL,
  sessionCookieName,
  TOKEN_IN_URL,
  tokenInUrl,
  tokensMatch,
} from "./auth.js";
import { credentialId, tokenVerifier, unixEndpoint } from "./client/server-proof.js";
import { unixSocketUrl } from "./client/ws-transport.js";
import { type Bus, SoloBus } from "./cluster/bus.js";
import { busKey } from "./cluster/bus-auth.js";
import { type ConfigOverrides, loadConfig, type SpoolConfig } from "./config.js";
import { serverState } from "./core/dispatch.js";
import { createCore } from "./core/index.js";
import type { Authenticated } from "./core/principals.js";
import { entryGet } from "./features/entries/get.js";
import { builtinPlugins } from "./features/index.js";
import { acquireHomeLock, type HomeLock } from "./home-lock.js";
import { checkHomeOwned } from "./home-owner.js";
import { recordStatePaths } from "./home-registry.js";
import { createLogger, type Logger } from "./logger.js";
import type { McpCaller, McpHttpEndpoint, McpHttpOptions } from "./mcp/http.js";
import { Meter, observeAll } from "./ops/meter.js";
import { createMetrics } from "./ops/metrics.js";
import { type OpsCaller, opsRoutes } from "./ops/routes.js";
import { removeServerFacts, SERVER_FACTS_FILE, serverFacts, writeServerFacts } from "./ops/server-facts.js";
import { startTracing, type Tracing } from "./ops/tracing-setup.js";
import { warmEntryGet } from "./ops/warm-up.js";
import { importPlugin, PluginHost } from "./plugins/host.js";
import type { Plugin } from "./plugins/plugin.js";
import { HOME_PRINCIPAL_NAME } from "./protocol/roles.js";
import type { ServerConnection } from "./rpc/connection.js";
import { HOME_PRINCIPAL } from "./rpc/connection-context.js";
import { SpoolError } from "./rpc/errors.js";
import { watchLiveness } from "./rpc/liveness.js";
import { RpcHost } from "./rpc/rpc-host.js";
import { createMemoryTransportPair, type Transport } from "./rpc/transport.js";
import { EmbeddedRunners } from "./runners/embedded.js";
import { openProcessRegistry, type ProcessRegistry } from "./runners/orphans.js";
import { Scavenger } from "./scavenger.js";
import { onCheckpointHold, openStore, type SqliteStore, type Store, type StoreOptions } from "./store/database.js";
import { loadMigrations, type MigrationSet, migrateToLatest } from "./store/migrator.js";
import type { PostgresStore } from "./store/postgres.js";
import { createRepositories } from "./store/repositories.js";
import { answerProof, ClientProofs, closeUnix, listenUnix, ownDoor, PROOF_PATH, PreAuthGate, verifiedTransport, wsTransport } from "./transports.js";
import { SERVER_VERSION } from "./version.js";
import { createWebHandler } from "./web/http.js";
import { type DeviceRegistry, SignInRefused, WebSessions } from "./web/sessions.js";

export { MIGRATIONS_DIR } from "./store/migrator.js";

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

/** A connection whose credential expires is closed then (a timer per such connection, cleared when it closes). */
function closeAtExpiry(connection: ServerConnection, expiresAt: number): void {
  const timer = setTimeout(
    () => connection.closeFor(1008, "credential expired", "its credential expired"),
    Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1),
  );
  timer.unref();
  connection.onClose(() => clearTimeout(timer));
}

/**
 * Why a request's Host or Origin is refused: a Host that is not an IP address, localhost or the configured host
 * (DNS rebinding: a page's name pointed at this server), or an Origin that is neither allowed nor the server's own.
 */
export function refusedOrigin(request: IncomingMessage, allowedOrigins: readonly string[], trustedHosts: readonly string[]): string | null {
  if (ownOrigin(request, trustedHosts) === null)
    return `Host ${JSON.stringify(request.headers.host ?? "")} is not this server's (an IP address, localhost or the configured host)`;
  if (!originAllowed(request, allowedOrigins, trustedHosts)) return `Origin ${request.headers.origin} is not allowed (allowedOrigins)`;
  return null;
}

/** The open connections of one principal (every transport). */
function connectionsOf(rpc: RpcHost, name: string): number {
  let open = 0;
  for (const connection of rpc.connections) if (connection.principal.name === name) open++;
  return open;
}

function refuse(socket: Socket, status: number, message: string, body = message): void {
  socket.end(`HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/**
 * Starts a Spool server: the home's lock, store, migrations, plugins, then the WebSocket listener.
 * A second server on the same home throws HomeLocked, naming the process that holds it, before it touches anything.
 */
export async function startServer(options: StartOptions = {}): Promise<SpoolServer> {
  const config = loadConfig(options, options.env);
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
  const lock = acquireHomeLock(config.home);
  // Every sandbox built on this machine hides this server's state, not only the sandboxes of its own runners (issue 54).
  recordStatePaths(serverState(config).concat(config.socketPath));
  try {
    return await startLocked(options, config, lock);
  } catch (error) {
    lock.release();
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

/** Where this server is reached: known once it listens (the page's links and the MCP endpoint read it then). */
interface Address {
  port: number;
  url: string;
  localUrl: string | null;
  /** What the Unix socket's proofs are bound to (`unix:` and its real path); null without a socket. */
  unixEndpoint: string | null;
}

/** The store (SQLite, or PostgreSQL when configured) with every migration applied; closed again if one fails. */
async function openStorage(options: StartOptions, config: SpoolConfig, log: Logger): Promise<{ store: Store; schema: MigrationSet; migrations: string[] }> {
  // The PostgreSQL store and bus are loaded only for a PostgreSQL database: a SQLite server never runs them, and every
  // module loaded stays in V8's heap (its source text and functions), which the old generation's growth multiplies.
  const store: Store = config.databaseUrl
    ? await (await import("./store/postgres.js")).openPostgresStore(config.databaseUrl)
    : openStore(config.dbFile, options.store);
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
async function wireServices(options: StartOptions, config: SpoolConfig, log: Logger, token: string, processes: ProcessRegistry, store: Store) {
  // The one place services are wired together: store → core → plugins, and the RPC host in front.
  const repos = createRepositories(store);
  // This server among those sharing the database: a row of its own, and a bus to the others (PostgreSQL only).
  const serverId = await repos.cluster.registerServer({ url: "", host: hostname(), pid: process.pid });
  // Its rows are signed with a key derived from the token, which the servers sharing the database share.
  const bus: Bus =
    store.kind === "postgres"
      ? new (await import("./cluster/postgres-bus.js")).PostgresBus(config.databaseUrl!, (store as PostgresStore).pool, serverId, log, {
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
    ? new (await import("./ops/tracing.js")).ProposalTracer(tracer, {
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

type Services = Awaited<ReturnType<typeof wireServices>>;

/**
 * Who a request's credential names: its bearer token, or (the Unix socket's clients, SPEC §2c) the proof it gives in
 * place of the token, the answer to the challenge its connection was given.
 */
function requestAuthenticator(
  token: string,
  homeCredential: string,
  principals: Services["core"]["principals"],
  authenticate: (presented: string | null) => Promise<Authenticated | null>,
) {
  const proofs = new ClientProofs();
  const homeId = credentialId(token);
  const authenticateRequest = async (request: IncomingMessage, options: { subprotocol?: boolean } = {}): Promise<Authenticated | null> => {
    const proof = proofs.take(request);
    if (!proof) return authenticate(presentedToken(request, options));
    if (proof.id === homeId) return proof.proves(tokenVerifier(token)) ? { principal: HOME_PRINCIPAL, expiresAt: null, credential: homeCredential } : null;
    return proof.id.length === 16 ? principals.byProof(proof.id, proof.proves) : null;
  };
  return { proofs, authenticateRequest };
}

/**
 * Who is asking, for every door: the home's token and principals' credentials, page sessions, what a revocation
 * closes, /mcp's caller and endpoint, the operator routes' caller, and the gate that bounds connections before they
 * authenticate.
 */
function credentialsFront(config: SpoolConfig, log: Logger, token: string, services: Services, address: Address) {
  const { core, rpc } = services;
  const gate = new PreAuthGate(
    {
      total: config.limits.maxUnauthenticatedConnections,
      perAddress: config.limits.maxUnauthenticatedPerAddress,
      deadlineMs: config.limits.authDeadlineMs,
      graceMs: config.limits.authGraceMs,
    },
    log,
  );
  // The web view: its page over plain HTTP, and pages signed in with a session (a cookie and the page's key) instead of the token.
  // Paired devices live in the store (core.devices); codes and the pages open here are this server's.
  const devices: DeviceRegistry = {
    pair: async (grant, from) => {
      try {
        return await core.devices.pair(grant, from);
      } catch (error) {
        // The server-wide bound: the page is told so (429), and nobody's device was unpaired for it.
        if (error instanceof SpoolError && error.errorName === "LIMIT_EXCEEDED") throw new SignInRefused(error.message, "maxDevices");
        throw error;
      }
    },
    check: (cookie, key, address) => core.devices.check(cookie, key, address),
    unpair: (cookie, key) => core.devices.unpair(cookie, key),
    touch: (id) => core.devices.touch(id),
  };
  const sessions = new WebSessions(devices, {
    maxCodes: config.limits.maxCodes,
    maxCodesPerPrincipal: config.limits.maxCodesPerPrincipal,
  });
  const homeCredential = `home:${credentialId(token)}`;
  core.devices.useHomeCredential(homeCredential);
  core.devices.onEnded((ids, reason) => sessions.endDevices(ids, reason));
  const trustedHosts = [config.host];
  // A wildcard listening address is no address to browse to: its loopback stands for it in a link.
  const hostForLink = ((h) => (h.includes(":") ? `[${h}]` : h))(
    config.host === "0.0.0.0" || config.host === "" ? "127.0.0.1" : config.host === "::" ? "::1" : config.host,
  );
  // Named after the port the browser reached the server by: servers behind one address share it, two ports of a host do not.
  const cookieName = (request: IncomingMessage) => sessionCookieName(portReached(request) ?? address.port);
  // The home's token file is the admin; any other credential is a principal's (src/core/principals.ts).
  const authenticate = async (presented: string | null): Promise<Authenticated | null> =>
    tokensMatch(token, presented) ? { principal: HOME_PRINCIPAL, expiresAt: null, credential: homeCredential } : await core.principals.authenticate(presented);
  const { proofs, authenticateRequest } = requestAuthenticator(token, homeCredential, core.principals, authenticate);
  // A revoked principal's connections and page sessions close at once (here; the bus tells the other servers).
  // When, per name: a connection whose credential was checked before a revocation and opened after it closes too.
  const revokedAt = new Map<string, number>();
  core.principals.onRevoked((name) => {
    revokedAt.set(name, performance.now());
    let closed = 0;
    for (const connection of rpc.connections) {
      if (connection.principal.name !== name || connection.principal === HOME_PRINCIPAL) continue;
      connection.closeFor(1008, "credential revoked", `principal "${name}" was revoked`);
      closed++;
    }
    sessions.endPrincipal(name);
    // Its MCP sessions and open MCP streams too (only when /mcp was ever used).
    mcp.endPrincipal(name);
    acp.endPrincipal(name);
    return closed;
  });
  // /mcp's caller: the principal its bearer credential names (never a cookie: the page does not speak MCP).
  const mcpCaller = async (request: IncomingMessage): Promise<McpCaller | null> => {
    if (tokenInUrl(request)) return null;
    const presented = presentedToken(request);
    const found = await authenticate(presented);
    return found && presented !== null ? { name: found.principal.name, role: found.principal.role, credential: presented, expiresAt: found.expiresAt } : null;
  };
  // MCP over Streamable HTTP at /mcp: each session a client of this server over its WebSocket, with the caller's credential.
  const mcp = mcpDoor(
    {
      authenticate: mcpCaller,
      // A caller with a good credential holds its connection past the unauthenticated deadline (a long SSE answer).
      authenticated: (request) => gate.authenticated(request.socket as Socket),
      refusedOrigin: (request) => refusedOrigin(request, config.allowedOrigins, trustedHosts),
      serverUrl: () => address.localUrl ?? address.url,
      version: SERVER_VERSION,
      log,
    },
    log,
  );
  // ACP by URL at /acp (Streamable HTTP and WebSocket): each connection a `spool acp` bridge with the caller's credential.
  const acp = acpDoor({
    authenticate: mcpCaller,
    authenticated: (request) => gate.authenticated(request.socket as Socket),
    refusedOrigin: (request) => refusedOrigin(request, config.allowedOrigins, trustedHosts),
    serverUrl: () => address.localUrl ?? address.url,
    log,
  });
  // Who asks the operator's routes (/metrics): the same credentials and page sessions as the WebSocket upgrade.
  const opsCaller = async (request: IncomingMessage): Promise<OpsCaller> => {
    if (!originAllowed(request, config.allowedOrigins, trustedHosts)) return { refused: 403 };
    if (tokenInUrl(request)) return { refused: 401, body: TOKEN_IN_URL };
    const byToken = await authenticateRequest(request, { subprotocol: true });
    if (byToken) return { role: byToken.principal.role, projects: byToken.principal.projects };
    const signedIn = await sessions.check(cookieValue(request, cookieName(request)), presentedSessionKey(request), request.socket.remoteAddress ?? null);
    if (!signedIn) return { refused: 401 };
    // The cookie is good only for the server's own page.
    if (request.headers.origin !== ownOrigin(request, trustedHosts)) return { refused: 403 };
    return { role: signedIn.principal.role, projects: signedIn.principal.projects };
  };
  return {
    sessions,
    trustedHosts,
    hostForLink,
    cookieName,
    authenticate,
    authenticateRequest,
    proofs,
    revokedAt,
    mcpHandler: mcp.handle,
    acpHandler: acp.handle,
    acpUpgrade: acp.upgrade,
    opsCaller,
    gate,
    mcp,
    acp,
  };
}

type Front = ReturnType<typeof credentialsFront>;

/**
 * /mcp's door: the endpoint (src/mcp/http.ts) loaded at its first request (the MCP SDK's modules would otherwise sit
 * in every server's heap, used or not).
 */
function mcpDoor(options: McpHttpOptions, log: Logger) {
  let endpoint: Promise<McpHttpEndpoint> | null = null;
  const load = () => (endpoint ??= import("./mcp/http.js").then(({ McpHttpEndpoint }) => new McpHttpEndpoint({ ...options, door: ownDoor("mcp") })));
  return {
    handle: (request: IncomingMessage, response: ServerResponse) =>
      void load().then(
        (mcp) => mcp.handle(request, response),
        (error: unknown) => {
          log.error("mcp: the /mcp endpoint could not load", error);
          response.writeHead(500, { "Content-Type": "text/plain" }).end("The MCP endpoint could not load; see the server's log\n");
        },
      ),
    /** A revoked principal's MCP sessions and open streams end (only when /mcp was ever used). */
    endPrincipal: (name: string) => void endpoint?.then((mcp) => mcp.endPrincipal(name)).catch(() => undefined),
    close: async () => (await endpoint?.catch(() => null))?.close(),
  };
}

/**
 * /acp's door: the endpoint (src/acp/http.ts) loaded at its first request, as /mcp's is (the ACP SDK's server
 * modules would otherwise sit in every server's heap, used or not).
 */
function acpDoor(options: AcpHttpOptions) {
  let endpoint: Promise<AcpHttpEndpoint> | null = null;
  const load = () => (endpoint ??= import("./acp/http.js").then(({ AcpHttpEndpoint }) => new AcpHttpEndpoint({ ...options, door: ownDoor("acp") })));
  const failed = (error: unknown) => options.log.error("acp: the /acp endpoint could not load", error);
  return {
    handle: (request: IncomingMessage, response: ServerResponse) =>
      void load().then(
        (acp) => acp.handle(request, response),
        (error: unknown) => {
          failed(error);
          response.writeHead(500, { "Content-Type": "text/plain" }).end("The ACP endpoint could not load; see the server's log\n");
        },
      ),
    upgrade: (request: IncomingMessage, socket: Socket, head: Buffer) =>
      void load().then(
        (acp) => acp.upgrade(request, socket, head),
        (error: unknown) => {
          failed(error);
          refuse(socket, 500, "Internal Server Error");
        },
      ),
    /** A revoked principal's ACP connections end (only when /acp was ever used). */
    endPrincipal: (name: string) => void endpoint?.then((acp) => acp.endPrincipal(name)).catch(() => undefined),
    close: async () => (await endpoint?.catch(() => null))?.close(),
  };
}

/** The HTTP server: the proof, /metrics and the other operator routes, /mcp, the page; and the WebSocket upgrade. */
function httpFront(
  config: SpoolConfig,
  log: Logger,
  token: string,
  readiness: { store: Store; schema: MigrationSet; lock: HomeLock },
  services: Services,
  front: Front,
  address: Address,
) {
  const { core, rpc, meter } = services;
  const { sessions, trustedHosts, hostForLink, cookieName, authenticateRequest, proofs, revokedAt, mcpHandler, acpHandler, acpUpgrade, opsCaller, gate } =
    front;
  const { store } = readiness;
  // Runners' chunks arrive in buffers outside V8's heap, freed by the collection that finds them dead: one
  // young-generation collection per scavengeEveryMb received frees them before they pile up (src/scavenger.ts).
  const scavenger = new Scavenger(config.scavengeEveryMb * 1024 * 1024);

  // A browser client sending its token as a subprotocol also offers "spool", which the server answers with (never the token).
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.limits.maxMessageBytes,
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  const metrics = createMetrics({
    meter,
    store,
    connections: function* () {
      for (const connection of rpc.connections) yield connection.clientInfo?.name ?? null;
    },
    runners: function* () {
      for (const runner of core.runners.attached()) yield runner.backend;
    },
  });
  const routes = opsRoutes({
    readiness: { store, migrations: Object.keys(readiness.schema), lock: readiness.lock },
    log,
    metrics,
    authenticate: opsCaller,
  });
  const web = createWebHandler({
    sessions,
    authenticate: async (request) => {
      const found = await authenticateRequest(request);
      return found && { principal: found.principal, credentialExpiresAt: found.expiresAt, credential: found.credential };
    },
    // The address the code's maker serves on: as the request reached it over TCP, else its own listening address and real port.
    pageUrl: (request) => {
      const reached = request.socket.remoteAddress !== undefined ? ownOrigin(request, trustedHosts) : null;
      return `${reached ?? `http://${hostForLink}:${address.port}`}/`;
    },
    allowedOrigins: config.allowedOrigins,
    trustedHosts,
    cookieName,
    log,
    mcp: mcpHandler,
    acp: acpHandler,
    routes,
  });
  // What the server proves to a TCP client before it sends a token: that it holds the token's verifier (src/client/server-proof.ts).
  const verifiers = new Map([[credentialId(token), tokenVerifier(token)]]);
  const http: HttpServer = createServer((request, response) => {
    if (request.url === PROOF_PATH)
      void answerProof(request, response, (id) => verifiers.get(id) ?? (id.length === 16 ? core.principals.verifier(id) : null), {
        proofs,
        unix: address.unixEndpoint,
      }).catch((error: unknown) => {
        log.error("server proof: failed", error);
        if (!response.headersSent) response.writeHead(500, { "Content-Length": "0" });
        response.end();
      });
    else web(request, response);
  });
  http.on("connection", (socket: Socket) => gate.admit(socket));
  http.on("upgrade", (request, socket: Socket, head) => {
    if (!originAllowed(request, config.allowedOrigins, trustedHosts)) return refuse(socket, 403, "Forbidden");
    if (tokenInUrl(request)) return refuse(socket, 401, "Unauthorized", TOKEN_IN_URL);
    if (new URL(request.url ?? "/", "http://localhost").pathname === "/acp") return acpUpgrade(request, socket, head);
    void upgrade(request, socket, head).catch((error: unknown) => {
      log.error("websocket upgrade failed", error);
      if (!socket.destroyed) refuse(socket, 500, "Internal Server Error");
    });
  });
  const upgrade = async (request: IncomingMessage, socket: Socket, head: Buffer) => {
    const checkedAt = performance.now();
    const byToken = await authenticateRequest(request, { subprotocol: true });
    // A page's session is its cookie and the key the page offers as a subprotocol: the cookie alone (which every port of the host gets) opens nothing.
    const session = byToken ? null : cookieValue(request, cookieName(request));
    const signedIn = byToken ? null : await sessions.check(session, presentedSessionKey(request, { subprotocol: true }), request.socket.remoteAddress ?? null);
    if (!byToken && !signedIn) {
      log.warn(`refused a connection from ${request.socket.remoteAddress}: ${session === null ? "no valid credential" : "no live session"}`);
      return refuse(socket, 401, "Unauthorized");
    }
    // The cookie is good only for the server's own page.
    if (signedIn && request.headers.origin !== ownOrigin(request, trustedHosts)) return refuse(socket, 403, "Forbidden");
    if (wss.clients.size >= config.limits.maxConnections) return refuse(socket, 503, "Service Unavailable");
    // Who the connection acts as: the credential's principal, or the one that signed the page in (spool open).
    const principal = byToken?.principal ?? signedIn!.principal;
    const open = principal.name === HOME_PRINCIPAL_NAME ? 0 : connectionsOf(rpc, principal.name);
    if (open >= config.limits.maxConnectionsPerPrincipal) {
      log.warn(`refused a connection of ${principal.name}: it has ${open} open (limits.maxConnectionsPerPrincipal)`);
      return refuse(socket, 429, "Too Many Requests", `${principal.name} has ${open} connections open (limits.maxConnectionsPerPrincipal); close one first`);
    }
    if (socket.destroyed) return;
    gate.authenticated(socket);
    wss.handleUpgrade(request, socket, head, (ws) => {
      // The session closes it when it ends: signed out, its credential expired or revoked.
      if (signedIn) ws.once("close", sessions.attach(signedIn, ws));
      // An oversized frame makes ws close this socket with 1009; the error must not reach the process.
      ws.on("error", (error) => log.warn(`websocket error: ${error.message}`));
      watchLiveness(ws, {
        timeoutMs: config.livenessTimeoutMs,
        raw: socket,
        onSilent: (silentMs) =>
          log.warn(
            `closing the connection from ${request.socket.remoteAddress}:${request.socket.remotePort}: nothing received for ${silentMs} ms (livenessTimeoutMs ${config.livenessTimeoutMs}); taken for dead`,
          ),
      });
      const connection = rpc.accept(wsTransport(ws, socket, scavenger), principal, verifiedTransport(request, signedIn !== null));
      if (byToken?.expiresAt != null) closeAtExpiry(connection, byToken.expiresAt);
      if ((revokedAt.get(principal.name) ?? -1) >= checkedAt) connection.closeFor(1008, "credential revoked", `principal "${principal.name}" was revoked`);
    });
  };
  return { server: http, wss };
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

/** The port in the request's Host header (its scheme's default when it names none); null without a usable Host. */
function portReached(request: IncomingMessage): number | null {
  const host = request.headers.host;
  if (!host) return null;
  try {
    const url = new URL(`http://${host}`);
    return url.port === "" ? 80 : Number(url.port);
  } catch {
    return null;
  }
}
