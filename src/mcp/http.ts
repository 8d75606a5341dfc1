import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { isLegacyRequest, WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/server";
import { PROJECT_NAME } from "../protocol/project-name.js";
import { type BridgeLog, McpBridge } from "./bridge.js";
import { bridgeOptionsFor, type McpCaller } from "./caller.js";
import { SessionEventStore } from "./event-store.js";
import type { McpExtras } from "./extras.js";
import { type McpTarget, type ModernLimits, ModernMcp } from "./modern.js";
import { CODES, MODERN_VERSION, SESSION_VERSION } from "./modern-wire.js";
import { answerError, sendResponse, webRequest } from "./web-http.js";

/*
 * MCP over Streamable HTTP at /mcp on `spool serve`'s own port: each MCP session is one McpBridge (the same
 * tools, resources and tasks as `spool mcp` on stdio) on the v2 SDK's WebStandardStreamableHTTPServerTransport (web-http.ts carries node:http across), a client of
 * this server over its WebSocket with the caller's own credential, so the server's checks of that credential
 * apply to every call it makes. Which revision a POST speaks (a 2025-11-25 session's, a 2026-07-28 request
 * without one, or neither: refused) is the v2 SDK's classifier's decision (era.ts).
 */

export type { McpCaller } from "./caller.js";

export interface McpHttpLimits {
  /** MCP sessions open at once (across callers). */
  maxSessions: number;
  /** Of them, one principal's at most (so no caller can take them all). */
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

export interface McpHttpOptions {
  /** The caller of a request, from its bearer credential; null when it presented none that is good. */
  authenticate(request: IncomingMessage): Promise<McpCaller | null>;
  /**
   * Its connection is authenticated: the server's deadline for unauthenticated connections no longer applies (an
   * SSE answer, a call waiting for a person, stays open past it).
   */
  authenticated?(request: IncomingMessage): void;
  /** Why a request's Host or Origin is refused (DNS rebinding, a foreign page); null when both are fine. */
  refusedOrigin(request: IncomingMessage): string | null;
  /** The server's own WebSocket URL, which each session's Spool connection opens. */
  serverUrl(): string;
  /** Sent with each of those connections (Spool-Door): the server records their transport as mcp. */
  door?: string | undefined;
  version: string;
  log: BridgeLog;
  limits?: Partial<McpHttpLimits>;
  /** Limits of the 2026-07-28 side (its kept Spool connections). */
  modernLimits?: Partial<ModernLimits>;
  /** Tools and resources beside Spool's own, for both revisions (extras.ts: the conformance suite's fixture, in test code only). */
  extras?: McpExtras;
}

interface Session {
  id: string;
  caller: McpCaller;
  transport: WebStandardStreamableHTTPServerTransport;
  /** The responses of its requests being answered (SSE streams stay open), cut when the session ends. */
  answers: Set<ServerResponse>;
  lastSeen: number;
  /** Ends the session when its credential expires. */
  expiry: NodeJS.Timeout | null;
}

/** How long an ended session's open answers get to take their end before they are cut. */
const ANSWER_GRACE_MS = 1_000;

/** An HTTP error answered as JSON-RPC (clients of Streamable HTTP read the body as such). */
class McpHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly code = -32600,
    /** The error's data, and the request id it answers (null when none could be read). */
    readonly extra: { data?: unknown; id?: string | number | null } = {},
  ) {
    super(message);
  }
}

export const MCP_PATH = "/mcp";

/** The /mcp endpoint: `handle` answers a request whose path is /mcp; `close` ends every session. */
export class McpHttpEndpoint {
  readonly #sessions = new Map<string, Session>();
  /** Sessions being initialized (counted against maxSessions before they have an id). */
  #starting = 0;
  readonly #limits: McpHttpLimits;
  /** Sessions being initialized, by principal (counted against its cap before they have an id). */
  readonly #startingBy = new Map<string, number>();
  readonly #sweep: NodeJS.Timeout;
  /** MCP 2026-07-28: requests without a session (modern.ts). */
  readonly #modern: ModernMcp;
  #closed = false;

  constructor(private readonly options: McpHttpOptions) {
    this.#limits = { ...DEFAULT_MCP_LIMITS, ...options.limits };
    this.#modern = new ModernMcp({
      serverUrl: options.serverUrl,
      door: options.door,
      version: options.version,
      log: options.log,
      limits: options.modernLimits,
      extras: options.extras,
    });
    this.#sweep = setInterval(() => this.#closeIdle(), Math.min(60_000, this.#limits.idleMs)).unref();
  }

  /** Open sessions (for tests and the server's figures). */
  get sessions(): number {
    return this.#sessions.size;
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    this.#handle(request, response).catch((error: unknown) => {
      if (error instanceof McpHttpError) return answerError(response, error.status, error.message, error.headers, error.code, error.extra);
      this.options.log.warn(`mcp: a request failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      answerError(response, 500, "Internal error", {}, -32603);
    });
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    // Checked before anything is read: a foreign page's request, or one without a credential, costs nothing.
    const refused = this.options.refusedOrigin(request);
    if (refused) throw new McpHttpError(403, refused);
    const caller = await this.options.authenticate(request);
    if (!caller) throw new McpHttpError(401, "Missing or wrong credential: send Authorization: Bearer <token>", { "WWW-Authenticate": "Bearer" });
    this.options.authenticated?.(request);
    if (this.#closed) throw new McpHttpError(503, "The server is shutting down");
    // A runner's credential attaches runners; it uses no MCP tool, so it gets no session and no answer here.
    if (caller.role === "runner") throw new McpHttpError(403, `${caller.name} is a runner credential: MCP's tools need the agent role or above`);
    const method = request.method ?? "GET";
    if (method !== "POST" && method !== "GET" && method !== "DELETE")
      throw new McpHttpError(405, `Method ${method} not allowed on ${MCP_PATH}`, { Allow: "GET, POST, DELETE" });
    const id = request.headers["mcp-session-id"];
    if (Array.isArray(id)) throw new McpHttpError(400, "One Mcp-Session-Id header, please");
    if (method !== "POST") {
      // A GET or DELETE is a 2025-11-25 session's (as the SDK's classifier has every POST-less request).
      if (id === undefined)
        throw new McpHttpError(
          405,
          `No Mcp-Session-Id: ${MODERN_VERSION} clients POST each request; ${SESSION_VERSION} clients start a session with an initialize request (POST)`,
          { Allow: "POST" },
        );
      return this.#serve(this.#session(id, caller), request, response, undefined);
    }
    const body = await readJson(request, this.#limits.maxBodyBytes);
    // Which revision it speaks is the v2 SDK's decision: what is not 2025-11-25 traffic (a session's) goes to the
    // SDK's 2026-07-28 handler, which refuses what neither revision takes, with its status, code and message.
    if (!(await isLegacyRequest(webRequest(request, response), body))) {
      // Checked when the request needs it (the tool list needs no project); 2026-07-28 has no sessions: an
      // Mcp-Session-Id beside such a request names none of its.
      const target = () => {
        try {
          return projectOf(request);
        } catch (error) {
          throw error instanceof McpHttpError ? new McpHttpError(400, error.message, {}, CODES.invalidParams, { id: idOf(body) }) : error;
        }
      };
      return this.#modern.serve(request, response, body, caller, target);
    }
    if (id === undefined) {
      if ((body as { method?: unknown } | null)?.method === "initialize") return this.#start(request, response, caller, projectOf(request), body);
      throw new McpHttpError(
        400,
        `No Mcp-Session-Id: the first request of a ${SESSION_VERSION} session is initialize (a ${MODERN_VERSION} request carries _meta io.modelcontextprotocol/protocolVersion)`,
      );
    }
    await this.#serve(this.#session(id, caller), request, response, body);
  }

  /** The caller's session of this id. */
  #session(id: string, caller: McpCaller): Session {
    const session = this.#sessions.get(id);
    // Another credential's session is not shown to exist.
    if (!session || session.caller.credential !== caller.credential)
      throw new McpHttpError(404, "No such MCP session (it ended or the server restarted): initialize a new one", {}, -32001);
    return session;
  }

  /** A new session: an initialize request opens a bridge of its own. */
  async #start(request: IncomingMessage, response: ServerResponse, caller: McpCaller, target: McpTarget, body: unknown): Promise<void> {
    if (this.#sessions.size + this.#starting >= this.#limits.maxSessions)
      throw new McpHttpError(503, `Too many MCP sessions (${this.#limits.maxSessions}); end one (DELETE) or wait for idle ones to close`, {
        "Retry-After": "30",
      });
    // One principal holds a few sessions at most: past them its own least recently used one ends (an idle one
    // first), so a client that never ends its sessions makes room in its own and never takes another's.
    const mine = [...this.#sessions.values()].filter((s) => s.caller.name === caller.name);
    const starting = this.#startingBy.get(caller.name) ?? 0;
    if (starting >= this.#limits.maxSessionsPerPrincipal)
      throw new McpHttpError(429, `${caller.name} is starting ${starting} MCP sessions at once already; retry`, { "Retry-After": "1" });
    const byAge = mine.sort((a, b) => Number(a.answers.size > 0) - Number(b.answers.size > 0) || a.lastSeen - b.lastSeen);
    for (const old of byAge.slice(0, Math.max(0, mine.length + starting + 1 - this.#limits.maxSessionsPerPrincipal)))
      this.#end(old.id, `${caller.name} opened more than ${this.#limits.maxSessionsPerPrincipal} sessions: its least recently used one ends`);
    this.#starting += 1;
    this.#startingBy.set(caller.name, (this.#startingBy.get(caller.name) ?? 0) + 1);
    let counted = true;
    const uncount = () => {
      if (counted) {
        this.#starting -= 1;
        const left = (this.#startingBy.get(caller.name) ?? 1) - 1;
        if (left > 0) this.#startingBy.set(caller.name, left);
        else this.#startingBy.delete(caller.name);
      }
      counted = false;
    };
    try {
      // Its Spool connection acts as an agent unless the credential is a person's (then elicitation may decide).
      const bridge = new McpBridge(bridgeOptionsFor(caller, target, this.options, `MCP over HTTP, ${caller.name}`));
      let session: Session | undefined;
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new SessionEventStore(),
        onsessioninitialized: (sid) => {
          session = { id: sid, caller, transport, answers: new Set(), lastSeen: Date.now(), expiry: null };
          // The session is its credential's: it ends when that expires (revocation: endPrincipal).
          if (caller.expiresAt != null) {
            const left = Math.max(0, caller.expiresAt - Date.now());
            session.expiry = setTimeout(() => this.#end(sid, "its credential expired"), Math.min(left, 2 ** 31 - 1)).unref();
          }
          this.#sessions.set(sid, session);
          uncount();
        },
      });
      const { closed } = await bridge.connect(transport);
      void closed
        .then(() => bridge.close())
        .catch((error: unknown) => this.options.log.warn(`mcp: closing a session: ${error instanceof Error ? error.message : String(error)}`))
        .finally(() => {
          if (transport.sessionId) {
            const ended = this.#sessions.get(transport.sessionId);
            if (ended?.expiry) clearTimeout(ended.expiry);
            this.#sessions.delete(transport.sessionId);
          }
        });
      // The initialize's answer is one message: its response is not counted among the session's open ones.
      await sendResponse(await transport.handleRequest(webRequest(request, response), { parsedBody: body }), response);
      // An initialize the transport refused made no session: nothing is left behind.
      if (!session) await transport.close();
    } finally {
      uncount();
    }
  }

  async #serve(session: Session, request: IncomingMessage, response: ServerResponse, body: unknown): Promise<void> {
    if (session.answers.size >= this.#limits.maxStreamsPerSession)
      throw new McpHttpError(429, `This session holds ${session.answers.size} requests open already (at most ${this.#limits.maxStreamsPerSession})`, {
        "Retry-After": "1",
      });
    session.answers.add(response);
    session.lastSeen = Date.now();
    response.once("close", () => {
      session.answers.delete(response);
      session.lastSeen = Date.now();
    });
    await sendResponse(await session.transport.handleRequest(webRequest(request, response), { parsedBody: body }), response);
  }

  #closeIdle(): void {
    const now = Date.now();
    for (const session of this.#sessions.values()) {
      if (session.answers.size === 0 && now - session.lastSeen > this.#limits.idleMs) this.#end(session.id, `idle for ${now - session.lastSeen} ms`);
    }
  }

  /** Ends a session (its streams close); its tasks go on in Spool's store. */
  #end(id: string, why: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.options.log.info(`mcp: session ${id} of ${session.caller.name} ended: ${why}`);
    if (session.expiry) clearTimeout(session.expiry);
    this.#sessions.delete(id);
    void session.transport.close();
    // Its streams end with the transport; one whose client does not take the end within a second is cut.
    if (session.answers.size > 0)
      setTimeout(() => {
        for (const response of session.answers) if (!response.writableFinished) response.destroy();
      }, ANSWER_GRACE_MS).unref();
  }

  /**
   * A principal's credential was revoked (or expired): its sessions end and their open SSE streams close, as do
   * its 2026-07-28 streams. How many sessions and streams ended.
   */
  endPrincipal(name: string, why = "its credential was revoked"): number {
    let ended = 0;
    for (const session of [...this.#sessions.values()]) {
      if (session.caller.name !== name) continue;
      this.#end(session.id, why);
      ended++;
    }
    return ended + this.#modern.endPrincipal(name);
  }

  /** Ends every session (the server stops); their tasks go on in Spool's store. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweep);
    await this.#modern.close();
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const s of sessions) if (s.expiry) clearTimeout(s.expiry);
    await Promise.allSettled(sessions.map((s) => s.transport.close()));
  }
}

/** The project, mode and runner a session works with, from /mcp's query: ?project=NAME or ?root=/abs/dir, &mode=, &runner=. */
function projectOf(request: IncomingMessage): McpTarget {
  const query = new URL(request.url ?? "/", "http://localhost").searchParams;
  for (const key of query.keys()) {
    if (!["project", "root", "mode", "runner"].includes(key))
      throw new McpHttpError(400, `Unknown parameter "${key}" in ${MCP_PATH}'s query (project, root, mode, runner)`);
  }
  const name = query.get("project") ?? undefined;
  const root = query.get("root") ?? undefined;
  if (name === undefined && root === undefined) throw new McpHttpError(400, `Name the project: ${MCP_PATH}?project=NAME (or ?root=/its/absolute/dir)`);
  if (name !== undefined && !PROJECT_NAME.test(name)) throw new McpHttpError(400, `Not a project name: "${name}"`);
  if (root !== undefined && !root.startsWith("/")) throw new McpHttpError(400, `root is an absolute directory, not "${root}"`);
  const mode = query.get("mode") ?? "act";
  if (mode !== "ask" && mode !== "act") throw new McpHttpError(400, `mode is ask or act, not "${mode}"`);
  const runner = query.get("runner") ?? undefined;
  if (runner !== undefined && (runner === "" || runner === "self")) throw new McpHttpError(400, `runner names an attached runner, not "${runner}"`);
  return {
    project: { ...(name !== undefined ? { name } : {}), ...(root !== undefined ? { root } : {}) },
    mode,
    ...(runner !== undefined ? { runner } : {}),
  };
}

/** A POST body as JSON, at most `max` bytes. */
function readJson(request: IncomingMessage, max: number): Promise<unknown> {
  const type = String(request.headers["content-type"] ?? "");
  if (!/^application\/json\b/i.test(type)) return Promise.reject(new McpHttpError(415, "Send JSON-RPC as application/json"));
  const declared = Number(request.headers["content-length"] ?? 0);
  if (declared > max) return Promise.reject(new McpHttpError(413, `The body is over ${max} bytes`));
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
    request.on("end", () => {
      if (over) return reject(new McpHttpError(413, `The body is over ${max} bytes`));
      try {
        resolve(JSON.parse(Buffer.concat(parts).toString("utf8")));
      } catch {
        reject(new McpHttpError(400, "Parse error: the body is not JSON", {}, -32700));
      }
    });
    request.on("error", reject);
  });
}

/** A request's id to echo in an error (null when it has none to read). */
function idOf(body: unknown): string | number | null {
  const id = (body as { id?: unknown } | null)?.id;
  return typeof id === "string" || typeof id === "number" ? id : null;
}
