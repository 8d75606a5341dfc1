import { createServer, type Server as HttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { WebSocketServer } from "ws";
import { cookieValue, originAllowed, ownOrigin, presentedSessionKey, SUBPROTOCOL, TOKEN_IN_URL, tokenInUrl } from "../auth.js";
import { credentialId, tokenVerifier } from "../client/server-proof.js";
import type { SpoolConfig } from "../config/config.js";
import { HOME_SHARE } from "../core/share-key.js";
import type { HomeLock } from "../home/lock.js";
import type { Logger } from "../logger.js";
import { createMetrics } from "../ops/metrics.js";
import { opsRoutes } from "../ops/routes.js";
import type { ServerConnection } from "../rpc/connection.js";
import { watchLiveness } from "../rpc/liveness.js";
import type { MigrationSet } from "../store/migrator.js";
import type { Store } from "../store/store.js";
import { createWebHandler } from "../web/http.js";
import { type Address, type Front, refuse } from "./front.js";
import { Scavenger } from "./scavenger.js";
import type { Services } from "./services.js";
import { answerProof, PROOF_PATH, SocketBudget, socketBound, verifiedTransport, wsTransport } from "./transports.js";

/** How long an idle keep-alive connection is said to be kept (the answers' `Keep-Alive: timeout=`): its client stops reusing it before. */
export const KEEP_ALIVE_ADVERTISED_MS = 5_000;
/**
 * How much longer the server really keeps it. A client reuses a connection up to a little before the advertised
 * time; a request it sends while the server is stalled (a busy machine, a long collection) waits in the kernel, and
 * a server whose idle timer fires when it wakes would close the connection with that request unread, which its
 * client sees reset (ECONNRESET, a POST not retried). Node adds 1 s by itself; a stall longer than that was seen.
 */
export const KEEP_ALIVE_GRACE_MS = 10_000;

/** Where Node has the setting (22.23 and 24.21 do), the grace is its buffer; on Node 20 the idle timer itself is longer. */
function keepIdleConnections(http: HttpServer): void {
  const server = http as HttpServer & { keepAliveTimeoutBuffer?: number };
  if (typeof server.keepAliveTimeoutBuffer === "number") {
    server.keepAliveTimeout = KEEP_ALIVE_ADVERTISED_MS;
    server.keepAliveTimeoutBuffer = KEEP_ALIVE_GRACE_MS;
  } else {
    // Node 20 adds 1 s to the idle timer: the same connection life as above.
    server.keepAliveTimeout = KEEP_ALIVE_ADVERTISED_MS + KEEP_ALIVE_GRACE_MS - 1_000;
  }
}

/** On Node 20 an answer advertises the server's idle timer unless told otherwise: it advertises the shorter time. */
function keepAliveHint(response: ServerResponse): void {
  const hinted = response as ServerResponse & { _keepAliveTimeout?: number };
  if (typeof hinted._keepAliveTimeout === "number") hinted._keepAliveTimeout = KEEP_ALIVE_ADVERTISED_MS;
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
 * The WebSocket connections open per share (the principal whose bounds they count against: its own, those of the
 * credentials it minted, and their paired devices'), kept as they open and close.
 */
class ShareCounts {
  readonly #open = new Map<string, number>();

  of(share: string): number {
    return this.#open.get(share) ?? 0;
  }

  /** One more for `share`, until `connection` closes. */
  add(share: string, connection: ServerConnection): void {
    this.#open.set(share, this.of(share) + 1);
    connection.onClose(() => {
      const left = this.of(share) - 1;
      if (left > 0) this.#open.set(share, left);
      else this.#open.delete(share);
    });
  }
}

/** The HTTP server: the proof, /metrics and the other operator routes, /mcp, the page; and the WebSocket upgrade. */
export function httpFront(
  config: SpoolConfig,
  log: Logger,
  token: string,
  readiness: { store: Store; schema: MigrationSet; lock: HomeLock },
  services: Services,
  front: Front,
  address: Address,
) {
  const { core, rpc, meter } = services;
  const { sessions, trustedHosts, hostForLink, cookieName, authenticateRequest, proofs, mcpHandler, acpHandler, acpUpgrade, opsCaller, gate } = front;
  const { store } = readiness;
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
    pools: () => Object.keys(config.pools),
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
      return found && { principal: found.principal, credentialExpiresAt: found.expiresAt, credential: found.credential, share: found.share };
    },
    // The address the code's maker serves on: as the request reached it over TCP, else its own listening address and real port.
    pageUrl: (request) => {
      const reached = request.socket.remoteAddress !== undefined ? ownOrigin(request, trustedHosts) : null;
      return `${reached ?? `http://${hostForLink}:${address.port}`}/`;
    },
    allowedOrigins: config.allowedOrigins,
    trustedHosts,
    cookieName,
    authenticated: (request) => gate.authenticated(request.socket as Socket),
    bodyDeadlineMs: config.limits.bodyDeadlineMs,
    log,
    mcp: mcpHandler,
    acp: acpHandler,
    routes,
  });
  // What the server proves to a TCP client before it sends a token: that it holds the token's verifier (src/client/server-proof.ts).
  const verifiers = new Map([[credentialId(token), tokenVerifier(token)]]);
  const http: HttpServer = createServer((request, response) => {
    keepAliveHint(response);
    gate.answering(request, response);
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
  keepIdleConnections(http);
  const upgrade = websocketUpgrade(config, log, services, front, wss);
  const budget = new SocketBudget(socketBound(config.limits.maxSockets), config.limits.homeReserve, log);
  http.on("connection", (socket: Socket) => {
    if (budget.admit(socket)) gate.admit(socket);
  });
  http.on("upgrade", (request, socket: Socket, head) => {
    if (!originAllowed(request, config.allowedOrigins, trustedHosts)) return refuse(socket, 403, "Forbidden");
    if (tokenInUrl(request)) return refuse(socket, 401, "Unauthorized", TOKEN_IN_URL);
    if (new URL(request.url ?? "/", "http://localhost").pathname === "/acp") return acpUpgrade(request, socket, head);
    void upgrade(request, socket, head).catch((error: unknown) => {
      log.error("websocket upgrade failed", error);
      if (!socket.destroyed) refuse(socket, 500, "Internal Server Error");
    });
  });
  return { server: http, wss };
}

/**
 * The WebSocket upgrade, its Origin checked: who the credential or the page's session names, the bounds on
 * connections (the server's, with the home's reserve past it; the principal's, counting the credentials it minted),
 * then the connection, closed at its credential's expiry or revocation.
 */
function websocketUpgrade(config: SpoolConfig, log: Logger, services: Services, front: Front, wss: WebSocketServer) {
  const { rpc } = services;
  const { sessions, trustedHosts, cookieName, authenticateRequest, revokedAt, gate } = front;
  const { maxConnections, maxConnectionsPerPrincipal, homeReserve } = config.limits;
  const shares = new ShareCounts();
  // Runners' chunks arrive in buffers outside V8's heap, freed by the collection that finds them dead: one
  // young-generation collection per scavengeEveryMb received frees them before they pile up (src/server/scavenger.ts).
  const scavenger = new Scavenger(config.scavengeEveryMb * 1024 * 1024);

  return async (request: IncomingMessage, socket: Socket, head: Buffer) => {
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
    // Who the connection acts as: the credential's principal, or the one that signed the page in (spool open); whose
    // bounds it counts against; and how it came (the home's token or its Unix socket keep the reserve; /mcp's and
    // /acp's own connections come by that socket with their caller's credential, and do not).
    const principal = byToken?.principal ?? signedIn!.principal;
    const share = byToken?.share ?? signedIn!.share;
    const transport = verifiedTransport(request, signedIn !== null);
    const home = share === HOME_SHARE || transport === "unix";
    if (wss.clients.size >= maxConnections + (home ? homeReserve : 0)) return refuse(socket, 503, "Service Unavailable");
    const open = share === HOME_SHARE ? 0 : shares.of(share);
    if (open >= maxConnectionsPerPrincipal) {
      log.warn(`refused a connection of ${principal.name}: its principal has ${open} open (limits.maxConnectionsPerPrincipal)`);
      return refuse(
        socket,
        429,
        "Too Many Requests",
        `${principal.name} has ${open} connections open with the credentials of its principal (limits.maxConnectionsPerPrincipal); close one first`,
      );
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
      const connection = rpc.accept(wsTransport(ws, socket, scavenger), principal, transport, share);
      shares.add(share, connection);
      if (byToken?.expiresAt != null) closeAtExpiry(connection, byToken.expiresAt);
      if ((revokedAt.get(principal.name) ?? -1) >= checkedAt) connection.closeFor(1008, "credential revoked", `principal "${principal.name}" was revoked`);
    });
  };
}
