import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/server";
import { SpoolRpcError } from "../../client/spool-client.js";
import { ConnectError } from "../../client/ws-transport.js";
import type { FrontDoor } from "../../door/door.js";
import { DoorError } from "../../door/errors.js";
import { callersEntry, type Holder, holdOpen, type OpenRequests, type PrincipalTable } from "../../door/table.js";
import { sendResponse, webRequest } from "../../door/web.js";
import { ERRORS } from "../../protocol/errors.js";
import { bridgeOptionsFor, type McpCaller, type McpTarget } from "../spool/caller.js";
import type { BridgeLog, McpBridgeOptions } from "../spool/spool-side.js";
import { McpBridge } from "./bridge.js";
import { SessionEventStore } from "./event-store.js";

/*
 * MCP 2025-11-25 sessions over Streamable HTTP (src/mcp/http.ts hands them here): each session is one McpBridge on
 * the v2 SDK's WebStandardStreamableHTTPServerTransport, a client of this server over its WebSocket with the
 * caller's own credential, kept in the front door's table per principal.
 */

export interface SessionLimits {
  /** MCP sessions open at once (across callers; the home goes the door's homeReserve past it). */
  maxSessions: number;
  /** Of them, one principal's at most (with the credentials it minted): past it its least recently used one ends. */
  maxSessionsPerPrincipal: number;
  /** Requests one session holds open at once (SSE streams: the GET stream and POST responses). */
  maxStreamsPerSession: number;
  /** A session with nothing open and no request for this long is closed (its tasks go on in Spool). */
  idleMs: number;
}

/** What each session's bridge is made with: this server, and how it reaches itself. */
export type SessionServer = {
  serverUrl(): string;
  door?: string | undefined;
  version: string;
  log: BridgeLog;
  extras?: McpBridgeOptions["extras"];
};

/** A session: its requests being answered (`open`: SSE streams stay open) are cut when it ends. */
interface Session extends OpenRequests {
  id: string;
  caller: McpCaller;
  transport: WebStandardStreamableHTTPServerTransport;
}

/** How long an ended session's open answers get to take their end before they are cut. */
const ANSWER_GRACE_MS = 1_000;

/** The 2025-11-25 sessions of /mcp: `start` opens one at an initialize, `serve` answers a request of one. */
export class HttpSessions {
  readonly #sessions: PrincipalTable<Session>;
  readonly #sweep: NodeJS.Timeout;

  constructor(
    door: FrontDoor,
    private readonly server: SessionServer,
    private readonly limits: SessionLimits,
  ) {
    this.#sessions = door.table<Session>(
      "MCP sessions",
      ["maxSessions", limits.maxSessions],
      ["maxSessionsPerPrincipal", limits.maxSessionsPerPrincipal],
      (session, why) => this.#ended(session, why),
    );
    this.#sweep = this.#sessions.sweepEvery(limits.idleMs);
  }

  /** Open sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /** A new session: an initialize request opens a bridge of its own, in a place its principal's share makes for it. */
  async start(request: IncomingMessage, response: ServerResponse, caller: McpCaller, holder: Holder, target: McpTarget, body: unknown): Promise<void> {
    const place = this.#sessions.take(holder);
    try {
      // Its Spool connection acts as an agent unless the credential is a person's (then elicitation may decide).
      const bridge = new McpBridge({ ...bridgeOptionsFor(caller, target, this.server, `MCP over HTTP, ${caller.name}`), client: clientOf(body) });
      // The project is joined before the initialize is answered: one the server has not (NOT_FOUND naming those there
      // are), or the credential may not join, is the initialize's own error, and no session is made.
      await bridge.side.ready().catch(async (error: unknown) => {
        await bridge.close();
        throw joinRefused(error, idOf(body));
      });
      let session: Session | undefined;
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new SessionEventStore(),
        onsessioninitialized: (sid) => {
          // The session is its credential's: it ends when that expires (the table's), or is revoked (endPrincipal).
          session = { id: sid, caller, transport, open: new Set(), lastSeen: Date.now() };
          place.add(sid, session);
        },
      });
      const { closed } = await bridge.connect(transport);
      void closed
        .then(() => bridge.close())
        .catch((error: unknown) => this.server.log.warn(`mcp: closing a session: ${error instanceof Error ? error.message : String(error)}`))
        .finally(() => {
          if (transport.sessionId) this.#sessions.delete(transport.sessionId);
        });
      // The initialize's answer is one message: its response is not counted among the session's open ones.
      await sendResponse(await transport.handleRequest(webRequest(request, response), { parsedBody: body }), response);
      // An initialize the transport refused made no session: nothing is left behind.
      if (!session) await transport.close();
    } finally {
      place.release();
    }
  }

  /** A request of the caller's session `id` (a POST's `body`, none for a GET or DELETE). */
  async serve(id: string, caller: McpCaller, request: IncomingMessage, response: ServerResponse, body: unknown): Promise<void> {
    const session = callersEntry(
      this.#sessions,
      id,
      caller,
      () => new DoorError(404, "No such MCP session (it ended or the server restarted): initialize a new one", {}, -32001),
    );
    holdOpen(session, response, this.limits.maxStreamsPerSession, "session", "maxStreamsPerSession");
    await sendResponse(await session.transport.handleRequest(webRequest(request, response), { parsedBody: body }), response);
  }

  /** A session out of the table: its transport closes and its open answers end. */
  #ended(session: Session, why: string): void {
    this.server.log.info(`mcp: session ${session.id} of ${session.caller.name} ended: ${why}`);
    void session.transport.close();
    // Its streams end with the transport; one whose client does not take the end within a second is cut.
    if (session.open.size > 0)
      setTimeout(() => {
        for (const response of session.open) if (!response.writableFinished) response.destroy();
      }, ANSWER_GRACE_MS).unref();
  }

  /** A principal's credential was revoked (or expired): its sessions end and their open SSE streams close. How many ended. */
  endPrincipal(name: string, why: string): number {
    return this.#sessions.endWhere((session) => session.caller.name === name, why);
  }

  /** Ends every session (the server stops); their tasks go on in Spool's store. */
  async close(): Promise<void> {
    clearInterval(this.#sweep);
    const sessions = this.#sessions.clear();
    await Promise.allSettled(sessions.map((s) => s.transport.close()));
  }
}

/** The client a 2025-11-25 initialize names (its Spool connection and run are named after it), or none. */
function clientOf(body: unknown): { name: string; version: string } | undefined {
  const info = (body as { params?: { clientInfo?: { name?: unknown; version?: unknown } } } | null)?.params?.clientInfo;
  if (!info || typeof info.name !== "string" || info.name === "") return undefined;
  return { name: info.name.slice(0, 200), version: typeof info.version === "string" ? info.version.slice(0, 100) : "unknown" };
}

/**
 * Why a session's project could not be joined, as the initialize's answer: Spool's refusal (NOT_FOUND, FORBIDDEN, …)
 * as a JSON-RPC error with its code, message and data, which MCP clients read as the initialize's error; this
 * server's connections full for the caller as the door's 429.
 */
function joinRefused(error: unknown, id: string | number | null): unknown {
  if (error instanceof SpoolRpcError) return new DoorError(200, error.message, {}, error.code, { data: error.data, id });
  if (error instanceof ConnectError && (error.status === 429 || error.status === 503))
    return new DoorError(429, error.message, { "Retry-After": "1" }, ERRORS.LIMIT_EXCEEDED.code, { data: { code: "LIMIT_EXCEEDED" }, id });
  return error;
}

/** A request's id to echo in an error (null when it has none to read). */
function idOf(body: unknown): string | number | null {
  const id = (body as { id?: unknown } | null)?.id;
  return typeof id === "string" || typeof id === "number" ? id : null;
}
