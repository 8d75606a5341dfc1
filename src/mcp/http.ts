import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { isLegacyRequest, WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/server";
import { SpoolRpcError } from "../client/spool-client.js";
import { ConnectError } from "../client/ws-transport.js";
import { type EndpointOptions, entryId, FrontDoor, shuttingDown, streamMethod } from "../door/door.js";
import { answerFailure, DoorError } from "../door/errors.js";
import { callersEntry, type Holder, holdOpen, type OpenRequests, type PrincipalTable } from "../door/table.js";
import { sendResponse, webRequest } from "../door/web.js";
import { ERRORS } from "../protocol/errors.js";
import { PROJECT_NAME } from "../protocol/project-name.js";
import { type BridgeLog, McpBridge } from "./sessions/bridge.js";
import { SessionEventStore } from "./sessions/event-store.js";
import { SESSION_VERSION } from "./sessions/server.js";
import { bridgeOptionsFor, type McpCaller } from "./spool/caller.js";
import type { McpExtras } from "./spool/extras.js";
import { type McpTarget, type ModernLimits, ModernMcp } from "./stateless/modern.js";
import { CODES, MODERN_VERSION } from "./stateless/wire.js";

/*
 * MCP over Streamable HTTP at /mcp on `spool serve`'s own port: each MCP session is one McpBridge (the same
 * tools, resources and tasks as `spool mcp` on stdio) on the v2 SDK's WebStandardStreamableHTTPServerTransport, a
 * client of this server over its WebSocket with the caller's own credential, so the server's checks of that
 * credential apply to every call it makes. Which revision a POST speaks (a 2025-11-25 session's, a 2026-07-28
 * request without one, or neither: refused) is the v2 SDK's classifier's decision. Who comes in, how much each
 * principal holds, how a body is read and how an answer crosses to node:http are the front door's (src/door), as
 * for /acp: one node:http ↔ web adapter (src/door/web.ts) for both doors, rather than the MCP SDK's node package
 * for /mcp alone. The 2025-11-25 sessions are src/mcp/sessions/'s, the 2026-07-28 requests src/mcp/stateless/'s;
 * this entry picks the wing.
 */

export type { McpCaller } from "./spool/caller.js";

export interface McpHttpLimits {
  /** MCP sessions open at once (across callers; the home goes the door's homeReserve past it). */
  maxSessions: number;
  /** Of them, one principal's at most (with the credentials it minted): past it its least recently used one ends. */
  maxSessionsPerPrincipal: number;
  /** Largest POST body. */
  maxBodyBytes: number;
  /** Requests one session holds open at once (SSE streams: the GET stream and POST responses). */
  maxStreamsPerSession: number;
  /** A session with nothing open and no request for this long is closed (its tasks go on in Spool). */
  idleMs: number;
}

export const DEFAULT_MCP_LIMITS: McpHttpLimits = {
  maxSessions: 64,
  maxSessionsPerPrincipal: 8,
  maxBodyBytes: 1024 * 1024,
  maxStreamsPerSession: 16,
  idleMs: 30 * 60_000,
};

export interface McpHttpOptions extends EndpointOptions {
  version: string;
  log: BridgeLog;
  limits?: Partial<McpHttpLimits>;
  /** Limits of the 2026-07-28 side (its kept Spool connections). */
  modernLimits?: Partial<ModernLimits>;
  /** Tools and resources beside Spool's own, for both revisions (extras.ts: the conformance suite's fixture, in test code only). */
  extras?: McpExtras;
}

/** A session: its requests being answered (`open`: SSE streams stay open) are cut when it ends. */
interface Session extends OpenRequests {
  id: string;
  caller: McpCaller;
  transport: WebStandardStreamableHTTPServerTransport;
}

/** How long an ended session's open answers get to take their end before they are cut. */
const ANSWER_GRACE_MS = 1_000;

export const MCP_PATH = "/mcp";

/** The /mcp endpoint: `handle` answers a request whose path is /mcp; `close` ends every session. */
export class McpHttpEndpoint {
  readonly #limits: McpHttpLimits;
  readonly #door: FrontDoor;
  readonly #sessions: PrincipalTable<Session>;
  readonly #sweep: NodeJS.Timeout;
  /** MCP 2026-07-28: requests without a session (src/mcp/stateless/modern.ts). */
  readonly #modern: ModernMcp;
  #closed = false;

  constructor(private readonly options: McpHttpOptions) {
    this.#limits = { ...DEFAULT_MCP_LIMITS, ...options.limits };
    this.#door = FrontDoor.of(options);
    this.#sessions = this.#door.table<Session>(
      "MCP sessions",
      ["maxSessions", this.#limits.maxSessions],
      ["maxSessionsPerPrincipal", this.#limits.maxSessionsPerPrincipal],
      (session, why) => this.#ended(session, why),
    );
    this.#modern = new ModernMcp({
      serverUrl: options.serverUrl,
      door: options.door,
      version: options.version,
      log: options.log,
      limits: options.modernLimits,
      reserve: this.#door.limits.homeReserve,
      extras: options.extras,
    });
    this.#sweep = this.#sessions.sweepEvery(this.#limits.idleMs);
  }

  /** Open sessions (for tests and the server's figures). */
  get sessions(): number {
    return this.#sessions.size;
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    this.#handle(request, response).catch((error: unknown) => answerFailure(response, error, this.options.log, "mcp"));
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    // Checked before anything is read: a foreign page's request, one without a credential, or one past its
    // principal's requests under way costs nothing. A runner's credential uses no MCP tool: no session, no answer.
    const admitted = await this.#door.enter(request, response, "MCP's tools need the agent role or above");
    const { caller, holder } = admitted;
    if (this.#closed) throw shuttingDown();
    const method = streamMethod(request, MCP_PATH);
    const id = entryId(request, "Mcp-Session-Id");
    if (method !== "POST") {
      // A GET or DELETE is a 2025-11-25 session's (as the SDK's classifier has every POST-less request).
      if (id === undefined)
        throw new DoorError(
          405,
          `No Mcp-Session-Id: ${MODERN_VERSION} clients POST each request; ${SESSION_VERSION} clients start a session with an initialize request (POST)`,
          { Allow: "POST" },
        );
      return this.#serve(this.#session(id, caller), request, response, undefined);
    }
    const body = await this.#door.json(request, admitted, this.#limits.maxBodyBytes);
    // Which revision it speaks is the v2 SDK's decision: what is not 2025-11-25 traffic (a session's) goes to the
    // SDK's 2026-07-28 handler, which refuses what neither revision takes, with its status, code and message.
    if (!(await isLegacyRequest(webRequest(request, response), body))) {
      // Checked when the request needs it (the tool list needs no project); 2026-07-28 has no sessions: an
      // Mcp-Session-Id beside such a request names none of its.
      const target = () => {
        try {
          return projectOf(request);
        } catch (error) {
          throw error instanceof DoorError ? new DoorError(400, error.message, {}, CODES.invalidParams, { id: idOf(body) }) : error;
        }
      };
      return this.#modern.serve(request, response, body, caller, holder, target);
    }
    if (id === undefined) {
      if ((body as { method?: unknown } | null)?.method === "initialize") return this.#start(request, response, caller, holder, projectOf(request), body);
      throw new DoorError(
        400,
        `No Mcp-Session-Id: the first request of a ${SESSION_VERSION} session is initialize (a ${MODERN_VERSION} request carries _meta io.modelcontextprotocol/protocolVersion)`,
      );
    }
    await this.#serve(this.#session(id, caller), request, response, body);
  }

  /** The caller's session of this id. */
  #session(id: string, caller: McpCaller): Session {
    return callersEntry(
      this.#sessions,
      id,
      caller,
      () => new DoorError(404, "No such MCP session (it ended or the server restarted): initialize a new one", {}, -32001),
    );
  }

  /** A new session: an initialize request opens a bridge of its own, in a place its principal's share makes for it. */
  async #start(request: IncomingMessage, response: ServerResponse, caller: McpCaller, holder: Holder, target: McpTarget, body: unknown): Promise<void> {
    const place = this.#sessions.take(holder);
    try {
      // Its Spool connection acts as an agent unless the credential is a person's (then elicitation may decide).
      const bridge = new McpBridge({ ...bridgeOptionsFor(caller, target, this.options, `MCP over HTTP, ${caller.name}`), client: clientOf(body) });
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
        .catch((error: unknown) => this.options.log.warn(`mcp: closing a session: ${error instanceof Error ? error.message : String(error)}`))
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

  async #serve(session: Session, request: IncomingMessage, response: ServerResponse, body: unknown): Promise<void> {
    holdOpen(session, response, this.#limits.maxStreamsPerSession, "session", "maxStreamsPerSession");
    await sendResponse(await session.transport.handleRequest(webRequest(request, response), { parsedBody: body }), response);
  }

  /** A session out of the table: its transport closes and its open answers end. */
  #ended(session: Session, why: string): void {
    this.options.log.info(`mcp: session ${session.id} of ${session.caller.name} ended: ${why}`);
    void session.transport.close();
    // Its streams end with the transport; one whose client does not take the end within a second is cut.
    if (session.open.size > 0)
      setTimeout(() => {
        for (const response of session.open) if (!response.writableFinished) response.destroy();
      }, ANSWER_GRACE_MS).unref();
  }

  /**
   * A principal's credential was revoked (or expired): its sessions end and their open SSE streams close, as do
   * its 2026-07-28 streams. How many sessions and streams ended.
   */
  endPrincipal(name: string, why = "its credential was revoked"): number {
    return this.#sessions.endWhere((session) => session.caller.name === name, why) + this.#modern.endPrincipal(name);
  }

  /** Ends every session (the server stops); their tasks go on in Spool's store. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweep);
    await this.#modern.close();
    const sessions = this.#sessions.clear();
    await Promise.allSettled(sessions.map((s) => s.transport.close()));
  }
}

/** The project, mode and runner a session works with, from /mcp's query: ?project=NAME or ?root=/abs/dir, &mode=, &runner=. */
function projectOf(request: IncomingMessage): McpTarget {
  const query = new URL(request.url ?? "/", "http://localhost").searchParams;
  for (const key of query.keys()) {
    if (!["project", "root", "mode", "runner"].includes(key))
      throw new DoorError(400, `Unknown parameter "${key}" in ${MCP_PATH}'s query (project, root, mode, runner)`);
  }
  const name = query.get("project") ?? undefined;
  const root = query.get("root") ?? undefined;
  if (name === undefined && root === undefined) throw new DoorError(400, `Name the project: ${MCP_PATH}?project=NAME (or ?root=/its/absolute/dir)`);
  if (name !== undefined && !PROJECT_NAME.test(name)) throw new DoorError(400, `Not a project name: "${name}"`);
  if (root !== undefined && !root.startsWith("/")) throw new DoorError(400, `root is an absolute directory, not "${root}"`);
  const mode = query.get("mode") ?? "act";
  if (mode !== "ask" && mode !== "act") throw new DoorError(400, `mode is ask or act, not "${mode}"`);
  const runner = query.get("runner") ?? undefined;
  if (runner !== undefined && (runner === "" || runner === "self")) throw new DoorError(400, `runner names an attached runner, not "${runner}"`);
  return {
    project: { ...(name !== undefined ? { name } : {}), ...(root !== undefined ? { root } : {}) },
    mode,
    ...(runner !== undefined ? { runner } : {}),
  };
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
