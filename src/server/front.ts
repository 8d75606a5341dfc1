import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { AcpHttpEndpoint, AcpHttpOptions } from "../acp/http.js";
import {
  cookieValue,
  originAllowed,
  ownOrigin,
  presentedSessionKey,
  presentedToken,
  sessionCookieName,
  TOKEN_IN_URL,
  tokenInUrl,
  tokensMatch,
} from "../auth.js";
import { credentialId, tokenVerifier } from "../client/server-proof.js";
import type { SpoolConfig } from "../config/config.js";
import type { Authenticated } from "../core/credentials/principals.js";
import { HOME_SHARE } from "../core/share-key.js";
import { FrontDoor } from "../door/door.js";
import type { Logger } from "../logger.js";
import type { McpCaller, McpHttpEndpoint, McpHttpOptions } from "../mcp/http.js";
import type { OpsCaller } from "../ops/routes.js";
import { HOME_PRINCIPAL } from "../rpc/connection-context.js";
import { SpoolError } from "../rpc/errors.js";
import { SERVER_VERSION } from "../version.js";
import { codeTagFor, type DeviceRegistry, SignInRefused, WebSessions } from "../web/sessions.js";
import type { Services } from "./services.js";
import { ClientProofs, ownDoor, PreAuthGate } from "./transports.js";

/** Where this server is reached: known once it listens (the page's links and the MCP endpoint read it then). */
export interface Address {
  port: number;
  url: string;
  localUrl: string | null;
  /** What the Unix socket's proofs are bound to (`unix:` and its real path); null without a socket. */
  unixEndpoint: string | null;
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

export function refuse(socket: Socket, status: number, message: string, body = message): void {
  socket.end(`HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

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
    if (proof.id === homeId)
      return proof.proves(tokenVerifier(token)) ? { principal: HOME_PRINCIPAL, expiresAt: null, credential: homeCredential, share: HOME_SHARE } : null;
    return proof.id.length === 16 ? principals.byProof(proof.id, proof.proves) : null;
  };
  return { proofs, authenticateRequest };
}

/**
 * The web view's sign-in: its page over plain HTTP, and pages signed in with a session (a cookie and the page's key)
 * instead of the token. Paired devices live in the store (core.devices); codes and the pages open here are this server's.
 */
function signInSessions(config: SpoolConfig, token: string, services: Services): WebSessions {
  const { core } = services;
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
    ended: (cookie, key) => core.devices.ended(cookie, key),
    unpair: (cookie, key) => core.devices.unpair(cookie, key),
    touch: (id) => core.devices.touch(id),
  };
  return new WebSessions(devices, {
    maxCodes: config.limits.maxCodes,
    maxCodesPerPrincipal: config.limits.maxCodesPerPrincipal,
    homeReserve: config.limits.homeReserve,
    // Marked so that the servers sharing the database (and no other) can tell which of them made a code.
    serverTag: codeTagFor(token, services.serverId),
    makerOf: (tag) => peerWithTag(services, token, tag),
  });
}

/**
 * The page's address of the living server sharing the database whose codes bear `tag`, as its row says where it
 * listens (a wildcard address: by its machine's name, as notifications name this server's page); null when none.
 */
async function peerWithTag(services: Services, token: string, tag: string): Promise<string | null> {
  const others = (await services.bus.alive()).filter((id) => id !== services.serverId);
  const id = others.find((other) => codeTagFor(token, other) === tag);
  if (id === undefined) return null;
  const [row] = await services.repos.cluster.listServers([id]);
  if (!row?.url || !URL.canParse(row.url)) return null;
  const url = new URL(row.url);
  const wildcard = url.hostname === "0.0.0.0" || url.hostname === "[::]";
  return `http://${wildcard ? row.host : url.hostname}${url.port ? `:${url.port}` : ""}`;
}

/**
 * Who is asking, for every door: the home's token and principals' credentials, page sessions, what a revocation
 * closes, /mcp's caller and endpoint, the operator routes' caller, and the gate that bounds connections before they
 * authenticate.
 */
export function credentialsFront(config: SpoolConfig, log: Logger, token: string, services: Services, address: Address) {
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
  const sessions = signInSessions(config, token, services);
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
  // The home's token file is the admin; any other credential is a principal's (src/core/credentials/principals.ts).
  const authenticate = async (presented: string | null): Promise<Authenticated | null> =>
    tokensMatch(token, presented)
      ? { principal: HOME_PRINCIPAL, expiresAt: null, credential: homeCredential, share: HOME_SHARE }
      : await core.principals.authenticate(presented);
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
    // Its MCP sessions and open MCP streams too (only when /mcp was ever used), and its requests under way at either door.
    mcp.endPrincipal(name);
    acp.endPrincipal(name);
    frontDoor.endPrincipal(name);
    return closed;
  });
  // A removed project's connections close (here; the bus tells the other servers): nothing of it is left to act on.
  core.sessions.onDeleted((projectId) => {
    let closed = 0;
    for (const connection of rpc.connections) {
      if (connection.project?.id !== projectId) continue;
      connection.closeFor(1008, "project removed", `project "${connection.project.name}" was removed`);
      closed++;
    }
    return closed;
  });
  const { mcp, acp, frontDoor } = agentDoors(config, log, authenticate, { gate, trustedHosts, address });
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

export type Front = ReturnType<typeof credentialsFront>;

/**
 * /mcp and /acp, behind the front door they share (src/door): the caller their bearer credential names (never a
 * cookie: the page speaks neither), the requests under way per principal and in all, the body's deadline.
 */
function agentDoors(
  config: SpoolConfig,
  log: Logger,
  authenticate: (presented: string | null) => Promise<Authenticated | null>,
  at: { gate: PreAuthGate; trustedHosts: readonly string[]; address: Address },
) {
  const { gate, trustedHosts, address } = at;
  const doorCaller = async (request: IncomingMessage): Promise<McpCaller | null> => {
    if (tokenInUrl(request)) return null;
    const presented = presentedToken(request);
    const found = await authenticate(presented);
    if (!found || presented === null) return null;
    const { name, role } = found.principal;
    return { name, role, credential: presented, expiresAt: found.expiresAt, share: found.share, home: found.share === HOME_SHARE };
  };
  const doors = {
    authenticate: doorCaller,
    // A caller with a good credential holds its connection past the unauthenticated deadline (a long SSE answer).
    authenticated: (request: IncomingMessage) => gate.authenticated(request.socket as Socket),
    refusedOrigin: (request: IncomingMessage) => refusedOrigin(request, config.allowedOrigins, trustedHosts),
    serverUrl: () => address.localUrl ?? address.url,
    log,
  };
  const { limits } = config;
  const frontDoor = new FrontDoor({
    ...doors,
    limits: {
      maxRequests: limits.maxHttpRequests,
      maxRequestsPerPrincipal: limits.maxHttpRequestsPerPrincipal,
      homeReserve: limits.homeReserve,
      bodyDeadlineMs: limits.bodyDeadlineMs,
    },
  });
  return {
    // MCP over Streamable HTTP at /mcp: each session a client of this server over its WebSocket, with the caller's credential.
    mcp: mcpDoor({ ...doors, frontDoor, version: SERVER_VERSION }, log),
    // ACP by URL at /acp (Streamable HTTP and WebSocket): each connection a `spool acp` bridge with the caller's credential.
    acp: acpDoor({ ...doors, frontDoor }),
    frontDoor,
  };
}

/**
 * /mcp's door: the endpoint (src/mcp/http.ts) loaded at its first request (the MCP SDK's modules would otherwise sit
 * in every server's heap, used or not).
 */
function mcpDoor(options: McpHttpOptions, log: Logger) {
  let endpoint: Promise<McpHttpEndpoint> | null = null;
  const load = () => (endpoint ??= import("../mcp/http.js").then(({ McpHttpEndpoint }) => new McpHttpEndpoint({ ...options, door: ownDoor("mcp") })));
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
  const load = () => (endpoint ??= import("../acp/http.js").then(({ AcpHttpEndpoint }) => new AcpHttpEndpoint({ ...options, door: ownDoor("acp") })));
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
