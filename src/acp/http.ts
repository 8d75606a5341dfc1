import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { AcpServer, type AgentFactory } from "@agentclientprotocol/sdk/experimental/server";
import { type AgentConnector, agentProtocolRouter } from "@agentclientprotocol/sdk/experimental/v2";
import { type WebSocket, WebSocketServer } from "ws";
import type { Logger } from "../logger.js";
import { Bridge } from "./bridge.js";
import { v2App } from "./v2.js";

/*
 * ACP by URL: /acp on `spool serve`'s own port, Streamable HTTP and WebSocket, on the ACP SDK's AcpServer. Each ACP
 * connection is one Bridge (the agent `spool acp` serves on stdio), a client of this server over its own socket with
 * the caller's credential, so the server's checks of that credential (role, project scope) apply to every call it
 * makes. What is Spool's here is the front door: who may connect, from which page, how much, and for how long.
 */

/** Who calls /acp: the principal its bearer credential names. */
export interface AcpCaller {
  name: string;
  role: string;
  /** The credential it presented, which its Spool connections present in turn. */
  credential: string;
  /** When the credential expires (ms since the epoch); its connections end then. Null: never. */
  expiresAt?: number | null;
}

export interface AcpHttpLimits {
  /** ACP connections open at once (HTTP and WebSocket, every caller). */
  maxConnections: number;
  /** Of them, one principal's at most: past it, that principal's least recently used one ends. */
  maxConnectionsPerPrincipal: number;
  /** Largest POST body, and largest WebSocket message. */
  maxMessageBytes: number;
  /** HTTP requests one connection holds open at once (its SSE streams and the POSTs waiting on them). */
  maxRequestsPerConnection: number;
  /** Output one connection holds for a client that is not reading (the SDK's maxBufferedBytes). */
  maxBufferedBytes: number;
  /** How long a connection holding that much waits for its client to read before it closes. */
  maxOutputStallMs: number;
  /** An HTTP connection with no open request for this long is closed (its runs go on in Spool). */
  idleMs: number;
}

export const DEFAULT_ACP_LIMITS: AcpHttpLimits = {
  maxConnections: 64,
  maxConnectionsPerPrincipal: 8,
  maxMessageBytes: 1024 * 1024,
  maxRequestsPerConnection: 32,
  maxBufferedBytes: 8 * 1024 * 1024,
  maxOutputStallMs: 60_000,
  idleMs: 30 * 60_000,
};

export interface AcpHttpOptions {
  /** The caller of a request, from its bearer credential; null when it presented none that is good. */
  authenticate(request: IncomingMessage): Promise<AcpCaller | null>;
  /** Its socket is authenticated: the deadline for unauthenticated connections no longer applies (SSE stays open). */
  authenticated?(request: IncomingMessage): void;
  /** Why a request's Host or Origin is refused; null when both are fine. */
  refusedOrigin(request: IncomingMessage): string | null;
  /** The server's own address, which each connection's Spool clients open. */
  serverUrl(): string;
  /** Sent with each of those connections (Spool-Door): the server records their transport as acp. */
  door?: string | undefined;
  log: Logger;
  limits?: Partial<AcpHttpLimits>;
}

export const ACP_PATH = "/acp";

interface Connection {
  id: string;
  caller: AcpCaller;
  /** The WebSocket, for a connection upgraded to one. */
  ws: WebSocket | null;
  /** Its open HTTP requests (SSE streams, POSTs waiting for room). */
  open: Set<ServerResponse>;
  lastSeen: number;
  expiry: NodeJS.Timeout | null;
}

class AcpHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const CONNECTION_HEADER = "acp-connection-id";

/** The /acp endpoint: `handle` answers its HTTP requests, `upgrade` its WebSocket upgrades. */
export class AcpHttpEndpoint {
  readonly #server: AcpServer;
  readonly #limits: AcpHttpLimits;
  readonly #connections = new Map<string, Connection>();
  /** Connections being opened (counted against the caps before they have an id), by principal. */
  readonly #starting = new Map<string, number>();
  readonly #wss: WebSocketServer;
  readonly #sweep: NodeJS.Timeout;
  #closed = false;

  constructor(private readonly options: AcpHttpOptions) {
    this.#limits = { ...DEFAULT_ACP_LIMITS, ...options.limits };
    this.#server = new AcpServer({
      // Every connection is opened with its caller's agent (createAgent below); none without one.
      createAgent: () => {
        throw new Error("an ACP connection is opened with its caller's agent");
      },
      maxBufferedBytes: this.#limits.maxBufferedBytes,
      maxOutputStallMs: this.#limits.maxOutputStallMs,
      maxBufferedSessionStreams: 64,
      maxIdLength: 256,
    });
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: this.#limits.maxMessageBytes });
    this.#sweep = setInterval(() => this.#closeIdle(), Math.min(60_000, this.#limits.idleMs)).unref();
  }

  /** Open ACP connections (tests and figures). */
  get connections(): number {
    return this.#connections.size;
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    this.#handle(request, response).catch((error: unknown) => {
      if (error instanceof AcpHttpError) return answer(response, error.status, error.message, error.headers);
      this.options.log.warn(`acp: a request failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      answer(response, 500, "Internal error");
    });
  }

  /** A WebSocket upgrade of /acp: checked as a request is, then one ACP connection on the socket. */
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#upgrade(request, socket, head).catch((error: unknown) => {
      const status = error instanceof AcpHttpError ? error.status : 500;
      const message = error instanceof AcpHttpError ? error.message : "Internal error";
      if (!(error instanceof AcpHttpError)) this.options.log.warn(`acp: an upgrade failed: ${error instanceof Error ? error.message : String(error)}`);
      if (!socket.destroyed) {
        const headers = error instanceof AcpHttpError ? Object.entries(error.headers).map(([k, v]) => `${k}: ${v}\r\n`) : [];
        socket.end(
          `HTTP/1.1 ${status} ${status === 401 ? "Unauthorized" : status === 403 ? "Forbidden" : "Error"}\r\nConnection: close\r\n${headers.join("")}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
        );
      }
    });
  }

  /** Who may come in: Host and Origin first, then the credential; a runner's credential has no agent to talk to. */
  async #admit(request: IncomingMessage): Promise<AcpCaller> {
    const refused = this.options.refusedOrigin(request);
    if (refused) throw new AcpHttpError(403, refused);
    if (new URL(request.url ?? "/", "http://localhost").searchParams.has("token"))
      throw new AcpHttpError(401, "The token is not accepted in the URL: send Authorization: Bearer <token>", { "WWW-Authenticate": "Bearer" });
    const caller = await this.options.authenticate(request);
    if (!caller) throw new AcpHttpError(401, "Missing or wrong credential: send Authorization: Bearer <token>", { "WWW-Authenticate": "Bearer" });
    this.options.authenticated?.(request);
    if (this.#closed) throw new AcpHttpError(503, "The server is shutting down");
    if (caller.role === "runner") throw new AcpHttpError(403, `${caller.name} is a runner credential: an ACP client needs the viewer role or above`);
    return caller;
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const caller = await this.#admit(request);
    const method = request.method ?? "GET";
    if (method !== "POST" && method !== "GET" && method !== "DELETE")
      throw new AcpHttpError(405, `Method ${method} not allowed on ${ACP_PATH}`, { Allow: "GET, POST, DELETE" });
    if (request.headers.upgrade) throw new AcpHttpError(400, "A WebSocket upgrade of /acp is a GET with Connection: Upgrade");
    const id = request.headers[CONNECTION_HEADER];
    if (Array.isArray(id)) throw new AcpHttpError(400, "One Acp-Connection-Id header, please");
    const connection = id === undefined ? null : this.#connection(id, caller);
    const body = method === "POST" ? await readBody(request, this.#limits.maxMessageBytes) : undefined;
    if (connection) return this.#forward(connection, request, response, body);
    // No connection yet: an initialize opens one (the SDK refuses anything else), counted against the caps first.
    const release = this.#reserve(caller);
    try {
      let opened: Connection | null = null;
      const agent = this.#agentFor(caller, () => opened);
      const reply = await this.#server.handleRequest(webRequest(request, response, body), { createAgent: agent });
      const newId = reply.status === 200 ? reply.headers.get(CONNECTION_HEADER) : null;
      if (newId) opened = this.#register(newId, caller, null);
      await writeResponse(response, reply);
    } finally {
      release();
    }
  }

  async #forward(connection: Connection, request: IncomingMessage, response: ServerResponse, body: string | undefined): Promise<void> {
    if (connection.ws) throw new AcpHttpError(400, "This ACP connection is a WebSocket's");
    if (connection.open.size >= this.#limits.maxRequestsPerConnection)
      throw new AcpHttpError(429, `This connection holds ${connection.open.size} requests open already (at most ${this.#limits.maxRequestsPerConnection})`, {
        "Retry-After": "1",
      });
    connection.open.add(response);
    connection.lastSeen = Date.now();
    response.once("close", () => {
      connection.open.delete(response);
      connection.lastSeen = Date.now();
    });
    const reply = await this.#server.handleRequest(webRequest(request, response, body));
    if (request.method === "DELETE" && reply.status < 300) this.#forget(connection.id);
    await writeResponse(response, reply);
  }

  async #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const caller = await this.#admit(request);
    const release = this.#reserve(caller);
    let opened: Connection | null = null;
    const prepared = this.#server.prepareWebSocketUpgrade({ createAgent: this.#agentFor(caller, () => opened) });
    const addHeader = (headers: string[], upgrading: IncomingMessage) => {
      if (upgrading === request) headers.push(`Acp-Connection-Id: ${prepared.connectionId}`);
    };
    const failed = () => {
      release();
      prepared.reject();
    };
    socket.once("close", failed);
    this.#wss.on("headers", addHeader);
    try {
      this.#wss.handleUpgrade(request, socket, head, (ws) => {
        socket.off("close", failed);
        release();
        ws.on("error", (error) => this.options.log.warn(`acp: websocket error: ${error.message}`));
        opened = this.#register(prepared.connectionId, caller, ws);
        ws.once("close", () => this.#forget(prepared.connectionId));
        prepared.accept(ws as never);
      });
    } catch (error) {
      socket.off("close", failed);
      failed();
      throw error;
    } finally {
      this.#wss.off("headers", addHeader);
    }
  }

  /** The agent of a new connection: a Bridge with the caller's credential, which ends the connection's record when it closes. */
  #agentFor(caller: AcpCaller, opened: () => Connection | null): AgentFactory {
    return () => {
      const bridge = new Bridge({
        server: () => ({
          launched: Promise.resolve(),
          ready: Promise.resolve({ url: this.options.serverUrl(), token: caller.credential, door: this.options.door }),
        }),
        log: this.options.log,
        via: "ACP by URL",
        mayDecide: caller.role === "person" || caller.role === "admin",
      });
      // ACP v1 by default; the draft v2 when the client's initialize asks for it.
      const router = agentProtocolRouter()
        .withV1(bridge.app() as unknown as AgentConnector)
        .withV2(v2App(bridge) as unknown as AgentConnector);
      return {
        connect: (stream, connectOptions) => {
          const lifecycle = router.connect(stream as never, connectOptions);
          void lifecycle.closed.then(() => {
            const connection = opened();
            if (connection) this.#forget(connection.id);
          });
          return lifecycle;
        },
      };
    };
  }

  /** The caller's connection of this id (another credential's is not shown to exist). */
  #connection(id: string, caller: AcpCaller): Connection {
    const connection = this.#connections.get(id);
    if (!connection || connection.caller.credential !== caller.credential)
      throw new AcpHttpError(404, "Unknown Acp-Connection-Id (it ended or the server restarted): initialize a new connection");
    return connection;
  }

  /**
   * Room for a new connection of `caller`: refused when every connection is taken; past the principal's cap its own
   * least recently used connection ends (an idle one first), so one principal never takes another's room.
   */
  #reserve(caller: AcpCaller): () => void {
    const starting = [...this.#starting.values()].reduce((a, b) => a + b, 0);
    const mine = [...this.#connections.values()].filter((c) => c.caller.name === caller.name);
    const mineStarting = this.#starting.get(caller.name) ?? 0;
    if (mineStarting >= this.#limits.maxConnectionsPerPrincipal)
      throw new AcpHttpError(429, `${caller.name} is opening ${mineStarting} ACP connections at once already; retry`, { "Retry-After": "1" });
    const byAge = mine.sort((a, b) => Number(a.open.size > 0 || a.ws !== null) - Number(b.open.size > 0 || b.ws !== null) || a.lastSeen - b.lastSeen);
    for (const old of byAge.slice(0, Math.max(0, mine.length + mineStarting + 1 - this.#limits.maxConnectionsPerPrincipal)))
      this.#end(old.id, `${caller.name} opened more than ${this.#limits.maxConnectionsPerPrincipal} ACP connections: its least recently used one ends`);
    if (this.#connections.size + starting >= this.#limits.maxConnections)
      throw new AcpHttpError(503, `Too many ACP connections (${this.#limits.maxConnections}); retry later`, { "Retry-After": "30" });
    this.#starting.set(caller.name, mineStarting + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#starting.get(caller.name) ?? 1) - 1;
      if (left > 0) this.#starting.set(caller.name, left);
      else this.#starting.delete(caller.name);
    };
  }

  #register(id: string, caller: AcpCaller, ws: WebSocket | null): Connection {
    const connection: Connection = { id, caller, ws, open: new Set(), lastSeen: Date.now(), expiry: null };
    // A connection is its credential's: it ends when that expires (revocation: endPrincipal).
    if (caller.expiresAt != null) {
      const left = Math.max(0, caller.expiresAt - Date.now());
      connection.expiry = setTimeout(() => this.#end(id, "its credential expired"), Math.min(left, 2 ** 31 - 1)).unref();
    }
    this.#connections.set(id, connection);
    return connection;
  }

  #forget(id: string): void {
    const connection = this.#connections.get(id);
    if (!connection) return;
    if (connection.expiry) clearTimeout(connection.expiry);
    this.#connections.delete(id);
  }

  /** Ends a connection: its WebSocket or its SSE streams close at once; its runs go on in Spool. */
  #end(id: string, why: string): void {
    const connection = this.#connections.get(id);
    if (!connection) return;
    this.options.log.info(`acp: connection ${id} of ${connection.caller.name} ended: ${why}`);
    this.#forget(id);
    if (connection.ws) {
      connection.ws.close(1008, why.slice(0, 120));
      // A client that does not answer the close frame is cut off.
      setTimeout(() => connection.ws?.terminate(), 500).unref();
      return;
    }
    void this.#server
      .handleRequest(new Request(`http://localhost${ACP_PATH}`, { method: "DELETE", headers: { "Acp-Connection-Id": id } }))
      .catch(() => undefined);
    for (const response of connection.open) response.destroy();
  }

  #closeIdle(): void {
    const now = Date.now();
    for (const c of [...this.#connections.values()])
      if (!c.ws && c.open.size === 0 && now - c.lastSeen > this.#limits.idleMs) this.#end(c.id, `idle for ${now - c.lastSeen} ms`);
  }

  /** A principal's credential was revoked (or expired): its connections end and their streams close. How many. */
  endPrincipal(name: string, why = "its credential was revoked"): number {
    let ended = 0;
    for (const connection of [...this.#connections.values()]) {
      if (connection.caller.name !== name) continue;
      this.#end(connection.id, why);
      ended++;
    }
    return ended;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const connection of this.#connections.values()) {
      if (connection.expiry) clearTimeout(connection.expiry);
      for (const response of connection.open) response.destroy();
    }
    this.#connections.clear();
    await this.#server.close();
    this.#wss.close();
  }
}

/** The web Request the SDK takes, aborted when the client goes away before the answer is out. */
function webRequest(request: IncomingMessage, response: ServerResponse, body: string | undefined): Request {
  const abort = new AbortController();
  response.once("close", () => {
    if (!response.writableFinished) abort.abort(new Error("the client went away"));
  });
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  return new Request(`http://localhost${ACP_PATH}`, { method: request.method ?? "GET", headers, body, signal: abort.signal });
}

/** Writes the SDK's answer; a stream (SSE) is piped as it comes, and stops when the client goes away. */
async function writeResponse(response: ServerResponse, reply: Response): Promise<void> {
  if (response.destroyed) {
    await reply.body?.cancel().catch(() => undefined);
    return;
  }
  const headers: Record<string, string> = { "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" };
  reply.headers.forEach((value, name) => {
    headers[name] = value;
  });
  response.writeHead(reply.status, headers);
  if (!reply.body) {
    response.end();
    return;
  }
  response.flushHeaders();
  const body = Readable.fromWeb(reply.body as unknown as NodeReadableStream<Uint8Array>);
  body.on("error", () => response.destroy());
  response.once("close", () => body.destroy());
  body.pipe(response);
}

/** A POST body as text, at most `max` bytes (the SDK parses it). */
function readBody(request: IncomingMessage, max: number): Promise<string> {
  const declared = Number(request.headers["content-length"] ?? 0);
  if (declared > max) return Promise.reject(new AcpHttpError(413, `The body is over ${max} bytes`));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let over = false;
    request.on("data", (part: Buffer) => {
      size += part.length;
      // Past the limit the rest is read and dropped, so the answer reaches the client.
      if (size > max) {
        over = true;
        parts.length = 0;
        return;
      }
      parts.push(part);
    });
    request.on("end", () => (over ? reject(new AcpHttpError(413, `The body is over ${max} bytes`)) : resolve(Buffer.concat(parts).toString("utf8"))));
    request.on("error", reject);
  });
}

function answer(response: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const text = `${message}\n`;
  response
    .writeHead(status, {
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": String(Buffer.byteLength(text)),
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      ...headers,
    })
    .end(text);
}
