import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { AcpServer, type AgentFactory } from "@agentclientprotocol/sdk/experimental/server";
import { type AgentConnector, agentProtocolRouter } from "@agentclientprotocol/sdk/experimental/v2";
import { type WebSocket, WebSocketServer } from "ws";
import { type DoorCaller, type EndpointOptions, entryId, FrontDoor, shuttingDown, streamMethod } from "../door/door.js";
import { answerFailure, DoorError, refuseUpgrade } from "../door/errors.js";
import { callersEntry, holdOpen, type OpenRequests, type PrincipalTable } from "../door/table.js";
import { sendResponse, webRequest } from "../door/web.js";
import type { Logger } from "../logger.js";
import { Bridge } from "./bridge.js";
import { v2App } from "./v2.js";

/*
 * ACP by URL: /acp on `spool serve`'s own port, Streamable HTTP and WebSocket, on the ACP SDK's AcpServer. Each ACP
 * connection is one Bridge (the agent `spool acp` serves on stdio), a client of this server over its own socket with
 * the caller's credential, so the server's checks of that credential (role, project scope) apply to every call it
 * makes. Who may connect, from which page, how much and for how long is the front door's (src/door), as for /mcp.
 */

/** Who calls /acp: the principal its bearer credential names (the front door's caller). */
export type AcpCaller = DoorCaller;

export interface AcpHttpLimits {
  /** ACP connections open at once (HTTP and WebSocket, every caller; the home goes the door's homeReserve past it). */
  maxConnections: number;
  /** Of them, one principal's at most (with the credentials it minted): past it, that principal's least recently used one ends. */
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

export interface AcpHttpOptions extends EndpointOptions {
  log: Logger;
  limits?: Partial<AcpHttpLimits>;
}

export const ACP_PATH = "/acp";

/** An ACP connection: its open HTTP requests (`open`: SSE streams, POSTs waiting for room), or its WebSocket. */
interface Connection extends OpenRequests {
  id: string;
  caller: AcpCaller;
  /** The WebSocket, for a connection upgraded to one. */
  ws: WebSocket | null;
}

const CONNECTION_HEADER = "Acp-Connection-Id";

/** What a runner's credential lacks here. */
const NEEDS = "an ACP client needs the viewer role or above";

/** The /acp endpoint: `handle` answers its HTTP requests, `upgrade` its WebSocket upgrades. */
export class AcpHttpEndpoint {
  readonly #server: AcpServer;
  readonly #limits: AcpHttpLimits;
  readonly #door: FrontDoor;
  readonly #connections: PrincipalTable<Connection>;
  readonly #wss: WebSocketServer;
  readonly #sweep: NodeJS.Timeout;
  #closed = false;

  constructor(private readonly options: AcpHttpOptions) {
    const limits = { ...DEFAULT_ACP_LIMITS, ...options.limits };
    this.#limits = limits;
    this.#server = new AcpServer({
      // Every connection is opened with its caller's agent (createAgent below); none without one.
      createAgent: () => {
        throw new Error("an ACP connection is opened with its caller's agent");
      },
      maxBufferedBytes: limits.maxBufferedBytes,
      maxOutputStallMs: limits.maxOutputStallMs,
      maxBufferedSessionStreams: 64,
      maxIdLength: 256,
    });
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxMessageBytes });
    // A connection holding a WebSocket is busy as long as the socket is open.
    this.#door = FrontDoor.of(options);
    this.#connections = this.#door.table<Connection>(
      "ACP connections",
      ["maxConnections", limits.maxConnections],
      ["maxConnectionsPerPrincipal", limits.maxConnectionsPerPrincipal],
      (c, why) => this.#ended(c, why),
      (c) => c.open.size > 0 || c.ws !== null,
    );
    this.#sweep = this.#connections.sweepEvery(limits.idleMs);
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    this.#handle(request, response).catch((error: unknown) => answerFailure(response, error, this.options.log, "acp"));
  }

  /** A WebSocket upgrade of /acp: checked as a request is, then one ACP connection on the socket. */
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#upgrade(request, socket, head).catch((error: unknown) => {
      if (!(error instanceof DoorError)) this.options.log.warn(`acp: an upgrade failed: ${error instanceof Error ? error.message : String(error)}`);
      refuseUpgrade(socket, error instanceof DoorError ? error : new DoorError(500, "Internal error", {}, -32603));
    });
  }

  /** Open ACP connections (tests and figures). */
  get connections(): number {
    return this.#connections.size;
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const admitted = await this.#door.enter(request, response, NEEDS);
    const { caller, holder } = admitted;
    if (this.#closed) throw shuttingDown();
    const method = streamMethod(request, ACP_PATH);
    if (request.headers.upgrade) throw new DoorError(400, "A WebSocket upgrade of /acp is a GET with Connection: Upgrade");
    const id = entryId(request, CONNECTION_HEADER);
    const connection = id === undefined ? null : this.#connection(id, caller);
    const body = method === "POST" ? await this.#door.text(request, admitted, this.#limits.maxMessageBytes) : undefined;
    if (connection) return this.#forward(connection, request, response, body);
    // No connection yet: an initialize opens one (the SDK refuses anything else), in a place its principal's share makes.
    const place = this.#connections.take(holder);
    try {
      let opened: Connection | null = null;
      const agent = this.#agentFor(caller, () => opened);
      const reply = await this.#server.handleRequest(webRequest(request, response, body), { createAgent: agent });
      const newId = reply.status === 200 ? reply.headers.get(CONNECTION_HEADER) : null;
      if (newId) opened = this.#register(place, newId, caller, null);
      await sendResponse(reply, response);
    } finally {
      place.release();
    }
  }

  async #forward(connection: Connection, request: IncomingMessage, response: ServerResponse, body: string | undefined): Promise<void> {
    if (connection.ws) throw new DoorError(400, "This ACP connection is a WebSocket's");
    holdOpen(connection, response, this.#limits.maxRequestsPerConnection, "connection", "maxRequestsPerConnection");
    const reply = await this.#server.handleRequest(webRequest(request, response, body));
    if (request.method === "DELETE" && reply.status < 300) this.#connections.delete(connection.id);
    await sendResponse(reply, response);
  }

  async #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const { caller, holder } = await this.#door.admit(request, NEEDS);
    if (this.#closed) throw shuttingDown();
    const place = this.#connections.take(holder);
    let opened: Connection | null = null;
    const prepared = this.#server.prepareWebSocketUpgrade({ createAgent: this.#agentFor(caller, () => opened) });
    const addHeader = (headers: string[], upgrading: IncomingMessage) => {
      if (upgrading === request) headers.push(`Acp-Connection-Id: ${prepared.connectionId}`);
    };
    const failed = () => {
      place.release();
      prepared.reject();
    };
    socket.once("close", failed);
    this.#wss.on("headers", addHeader);
    try {
      this.#wss.handleUpgrade(request, socket, head, (ws) => {
        socket.off("close", failed);
        ws.on("error", (error) => this.options.log.warn(`acp: websocket error: ${error.message}`));
        opened = this.#register(place, prepared.connectionId, caller, ws);
        ws.once("close", () => this.#connections.delete(prepared.connectionId));
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
            if (connection) this.#connections.delete(connection.id);
          });
          return lifecycle;
        },
      };
    };
  }

  /** The caller's connection of this id (another credential's is not shown to exist). */
  #connection(id: string, caller: AcpCaller): Connection {
    return callersEntry(
      this.#connections,
      id,
      caller,
      () => new DoorError(404, "Unknown Acp-Connection-Id (it ended or the server restarted): initialize a new connection"),
    );
  }

  #register(place: { add(id: string, c: Connection): void }, id: string, caller: AcpCaller, ws: WebSocket | null): Connection {
    // A connection is its credential's: it ends when that expires (the table's), or is revoked (endPrincipal).
    const connection: Connection = { id, caller, ws, open: new Set(), lastSeen: Date.now() };
    place.add(id, connection);
    return connection;
  }

  /** A connection out of the table: its WebSocket or its SSE streams close at once; its runs go on in Spool. */
  #ended(connection: Connection, why: string): void {
    const { id } = connection;
    this.options.log.info(`acp: connection ${id} of ${connection.caller.name} ended: ${why}`);
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

  /** A principal's credential was revoked (or expired): its connections end and their streams close. How many. */
  endPrincipal(name: string, why = "its credential was revoked"): number {
    return this.#connections.endWhere((c) => c.caller.name === name, why);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const connection of this.#connections.clear()) for (const response of connection.open) response.destroy();
    await this.#server.close();
    this.#wss.close();
  }
}
