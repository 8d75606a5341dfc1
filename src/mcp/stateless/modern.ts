import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type AuthInfo, createMcpHandler, type McpHttpHandler, ProtocolError, type Server } from "@modelcontextprotocol/server";
import { answerError, DoorError, DoorFull } from "../../door/errors.js";
import { type Holder, PrincipalTable } from "../../door/table.js";
import { sendResponse, webRequest } from "../../door/web.js";
import { bridgeOptionsFor, type McpCaller, type McpTarget } from "../spool/caller.js";
import type { McpExtras } from "../spool/extras.js";
import { type BridgeLog, SpoolSide } from "../spool/spool-side.js";
import { message } from "../spool/text.js";
import type { ServerDeps } from "./call.js";
import { ListenWatches, listenedUris } from "./listen-watch.js";
import { RequestStates } from "./request-state.js";
import { spoolServer } from "./server.js";
import { type ClientInfo, CODES, idOrNull, META, MODERN_VERSION, malformedInputResponses, refusedEnvelope } from "./wire.js";

/*
 * MCP 2026-07-28 at /mcp, beside the 2025-11-25 sessions (src/mcp/http.ts, src/mcp/sessions/): no initialize and no session, each POST one
 * request carrying its protocol version and the client's capabilities. The tools and resources are the same
 * table and functions a 2025-11-25 session's server answers with (src/mcp/spool/), on a Spool side of the
 * caller's own (no MCP session under it); its Spool connection, with the caller's credential, is
 * kept for later requests of the same caller, client and project (a cache, never a session: any request may
 * come to a fresh one, as after a restart). Approvals are elicited as multi round-trip requests (requestState,
 * request-state.ts) and, with the tasks extension, run_command answers a task (tasks.ts). Over HTTP,
 * `serve` hands a POST to the v2 SDK's createMcpHandler (the kept connection's, with server.ts's factory); over
 * stdio, the v2 SDK's serveStdio serves `stdioServer`'s server (src/mcp/stdio.ts), each request on its client's kept
 * connection, and `watch` follows what a listen asks for.
 */

export interface ModernLimits {
  /** Spool connections kept for 2026-07-28 callers, in all. */
  maxConnections: number;
  /** Of them, one principal's at most (its least recently used one goes first). */
  maxPerPrincipal: number;
  /** A kept connection unused this long is closed. */
  idleMs: number;
}

export interface ModernOptions {
  /** The Spool server's URL: a bridge presents its caller's credential there (HTTP). */
  serverUrl?: (() => string) | undefined;
  /** HTTP: sent with each bridge's connection (Spool-Door), so the server records its transport as mcp. */
  door?: string | undefined;
  /** Stdio: the one Spool server and credential every bridge uses (started when none answers), instead. */
  server?: (() => Promise<{ url: string; token: string }>) | undefined;
  /** How the agent came, in its Spool connection's name: default `MCP 2026-07-28 over HTTP, PRINCIPAL`. */
  via?: string | undefined;
  /** Which Spool server it is a client of, in words added to the instructions (stdio: the home's). */
  where?: string | undefined;
  version: string;
  log: BridgeLog;
  limits?: Partial<ModernLimits> | undefined;
  /** Kept connections the home may hold past maxConnections (the front door's homeReserve). */
  reserve?: number | undefined;
  /** Tools and resources beside Spool's own (extras.ts: the conformance suite's fixture, in test code only). */
  extras?: McpExtras | undefined;
}

export const DEFAULT_MODERN_LIMITS: ModernLimits = { maxConnections: 64, maxPerPrincipal: 4, idleMs: 5 * 60_000 };

interface Kept {
  key: string;
  /** Its caller's name (a revocation drops it). */
  principal: string;
  /** Its Spool side: the connection with the caller's credential, the decisions waited for, the calls under way. */
  side: SpoolSide;
  /** The SDK's handler serving its requests (HTTP); closing it ends its listens with their completion. */
  handler: McpHttpHandler;
  /**
   * The same, answering as an SSE stream from the start, with keepalives: tools/call's (a command may wait for its
   * decision and run for hours; an answer that sends nothing until then is cut by proxies and client timeouts).
   */
  streaming: McpHttpHandler;
  /** What its listens follow in Spool. */
  watches: ListenWatches;
  /** Requests under way on it. */
  open: number;
  lastUsed: number;
}

const KEEPALIVE_MS = 15_000;

/** The methods answered on the caller's kept Spool connection; the rest (discovery, the tool list, unknown ones) need none. */
/** Of them, those whose Mcp-Name header names a body field, and which. */
const NAMED_BY: Record<string, string> = {
  "tools/call": "name",
  "resources/read": "uri",
  "tasks/get": "taskId",
  "tasks/update": "taskId",
  "tasks/cancel": "taskId",
};
const CONNECTED = new Set(["resources/list", "resources/read", "tools/call", "subscriptions/listen", "tasks/get", "tasks/update", "tasks/cancel"]);

export class ModernMcp {
  readonly #kept: PrincipalTable<Kept>;
  readonly #states = new RequestStates();
  readonly #limits: ModernLimits;
  readonly #sweep: NodeJS.Timeout;
  readonly #deps: ServerDeps;
  /** The SDK's handler for what needs no Spool connection. */
  readonly #shared: McpHttpHandler;
  /** Stdio: serveStdio's server, whose change notifications reach its listens. */
  #stdio: Server | null = null;

  constructor(private readonly options: ModernOptions) {
    this.#limits = { ...DEFAULT_MODERN_LIMITS, ...options.limits };
    // A cache, never a session: past the server's bound anyone's least recently used idle one is dropped; a principal
    // whose every kept connection has a request under way is refused (429) rather than have one cut.
    this.#kept = new PrincipalTable<Kept>(
      { total: this.#limits.maxConnections, perShare: this.#limits.maxPerPrincipal, reserve: options.reserve ?? 0 },
      {
        what: "kept MCP connections",
        names: { total: "maxConnections", perShare: "maxPerPrincipal" },
        busy: (kept) => kept.open > 0,
        lastUsed: (kept) => kept.lastUsed,
        end: (kept) => this.#drop(kept),
        evictBusy: false,
        sharedEviction: true,
      },
    );
    this.#deps = { version: options.version, where: options.where, extras: options.extras, log: options.log, states: this.#states };
    this.#shared = createMcpHandler(() => spoolServer(this.#deps, null), { legacy: "reject" });
    this.#sweep = this.#kept.sweepEvery(this.#limits.idleMs);
  }

  /** Spool connections kept (for tests and figures). */
  get connections(): number {
    return this.#kept.size;
  }

  /**
   * One POST that is no 2025-11-25 session's (src/mcp/http.ts asked the SDK's isLegacyRequest), answered by the v2 SDK's
   * createMcpHandler (its checks, JSON or SSE): on the caller's kept connection's handler when the method needs
   * one, decided here first (the project of /mcp's query, 429 past the limits), else on the shared one.
   */
  async serve(request: IncomingMessage, response: ServerResponse, body: unknown, caller: McpCaller, holder: Holder, target: () => McpTarget): Promise<void> {
    const web = webRequest(request, response);
    const call = (body ?? {}) as { id?: unknown; method?: unknown; params?: unknown };
    const authInfo = authOf(caller);
    // What the SDK refuses (another revision, a malformed envelope) it refuses on the shared handler, before a kept
    // connection is taken for it (which could evict another client's idle one, or be refused 429 when all are busy).
    if (typeof call.method !== "string" || !("id" in call) || !CONNECTED.has(call.method) || refusedEnvelope(body))
      return sendResponse(await this.#shared.fetch(web, { parsedBody: body, authInfo }), response);
    const id = idOrNull(call.id);
    // Its kept connection is decided before the SDK reads the request: one that cannot name what it acts on has none.
    const named = NAMED_BY[call.method];
    if (named && request.headers["mcp-name"] === undefined)
      return answerError(
        response,
        new DoorError(400, `Header mismatch: Mcp-Name is missing (${call.method} names its ${named})`, {}, CODES.headerMismatch),
        id,
      );
    const malformed = malformedInputResponses(call.params);
    if (malformed) return answerError(response, new DoorError(200, malformed, {}, CODES.invalidParams), id);
    const listening = call.method === "subscriptions/listen" ? listenedUris(call.params) : null;
    if (listening && "refused" in listening) return answerError(response, new DoorError(200, listening.refused, {}, CODES.invalidParams), id);
    let kept: Kept;
    try {
      kept = this.#connection(caller, holder, target(), clientOf(body));
    } catch (error) {
      if (!(error instanceof DoorFull)) throw error;
      return answerError(response, error, id);
    }
    kept.open += 1;
    kept.lastUsed = Date.now();
    let release = () => {};
    try {
      if (listening) {
        let session: Awaited<ReturnType<typeof kept.side.ready>>;
        try {
          session = await kept.side.ready();
        } catch (error) {
          return answerError(response, new DoorError(200, `Spool refused it: ${message(error)}`, {}, CODES.invalidParams), id);
        }
        const answered = await kept.handler.fetch(web, { parsedBody: body, authInfo });
        // Its stream is open (the ack went first): what it follows is watched from now on, until it ends.
        release = kept.watches.acquire(session, listening.uris, listening.listChanged);
        return await sendResponse(answered, response);
      }
      const handler = call.method === "tools/call" ? kept.streaming : kept.handler;
      await sendResponse(await handler.fetch(web, { parsedBody: body, authInfo }), response);
    } finally {
      release();
      kept.open -= 1;
      kept.lastUsed = Date.now();
    }
  }

  /**
   * Stdio: the factory of serveStdio's one server (src/mcp/stdio.ts), its requests answered on the kept connection of the
   * client each names (one caller and target: spool mcp's); `made` is told of each server made.
   */
  stdioServer(caller: McpCaller, target: McpTarget): Server {
    const server = spoolServer(this.#deps, (ctx) => {
      const kept = this.#stdioConnection(caller, target, clientOf({ params: { _meta: ctx.mcpReq.envelope } }));
      kept.lastUsed = Date.now();
      return { caller, side: kept.side };
    });
    // Its listens are served by serveStdio, told of changes through the server's own notifications.
    this.#stdio = server;
    return server;
  }

  /**
   * Stdio: the kept connection of the client a request (its `body`) names, held for it before serveStdio reads it,
   * as `serve` holds one for a POST: counted open until `release` (the request answered or cancelled), so it is
   * never closed to make room for another client name; when every one the caller may keep is held, this throws
   * (LIMIT_EXCEEDED, the request's error). Null for a method that needs no Spool connection.
   */
  hold(caller: McpCaller, target: McpTarget, body: unknown): (() => void) | null {
    const method = (body as { method?: unknown } | null)?.method;
    if (typeof method !== "string" || !CONNECTED.has(method) || method === "subscriptions/listen") return null;
    return this.#hold(caller, target, body).release;
  }

  /** Stdio: what a listen (its request `body`) follows, watched on its client's kept connection (held meanwhile); what lets go of it. */
  async watch(caller: McpCaller, target: McpTarget, body: unknown, listening: { uris: string[]; listChanged: boolean }): Promise<() => void> {
    const { kept, release: done } = this.#hold(caller, target, body);
    try {
      const release = kept.watches.acquire(await kept.side.ready(), listening.uris, listening.listChanged);
      return () => {
        release();
        done();
      };
    } catch (error) {
      done();
      throw error;
    }
  }

  #hold(caller: McpCaller, target: McpTarget, body: unknown): { kept: Kept; release: () => void } {
    const kept = this.#stdioConnection(caller, target, clientOf(body));
    kept.open += 1;
    kept.lastUsed = Date.now();
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      kept.open -= 1;
      kept.lastUsed = Date.now();
    };
    return { kept, release };
  }

  /** The calls about to be ended say the client's connection closed, not that the client cancelled them. */
  closing(): void {
    for (const kept of this.#kept.values()) kept.side.closing = true;
  }

  /** Stdio: `#connection` for spool mcp's one caller; none to be had is the request's error. */
  #stdioConnection(caller: McpCaller, target: McpTarget, named: ClientInfo): Kept {
    try {
      const holder = { share: caller.share ?? caller.name, name: caller.name, home: caller.home === true, expiresAt: caller.expiresAt };
      return this.#connection(caller, holder, target, named);
    } catch (error) {
      if (error instanceof DoorFull) throw new ProtocolError(error.code, error.message, error.extra.data);
      throw error;
    }
  }

  /** The Spool connection kept for this caller, client and project, opened (in a place its share makes) when there is none. */
  #connection(caller: McpCaller, holder: Holder, target: McpTarget, named: ClientInfo): Kept {
    const client = named ?? { name: "MCP client", version: "unknown" };
    const key = createHash("sha256")
      .update(JSON.stringify([caller.credential, target, client.name]))
      .digest("base64url");
    const found = this.#kept.get(key);
    if (found) {
      this.#kept.touch(key);
      return found;
    }
    const place = this.#kept.take(holder);
    const options = bridgeOptionsFor(caller, target, this.options, this.options.via ?? `MCP ${MODERN_VERSION} over HTTP, ${caller.name}`);
    const side = new SpoolSide(null, { ...options, client });
    const connection = { caller, side };
    const factory = () => spoolServer(this.#deps, () => connection);
    const handler = createMcpHandler(factory, { legacy: "reject", keepAliveMs: KEEPALIVE_MS });
    const streaming = createMcpHandler(factory, { legacy: "reject", keepAliveMs: KEEPALIVE_MS, responseMode: "sse" });
    const watches = new ListenWatches(side, {
      resourceUpdated: (uri) => {
        handler.notify.resourceUpdated(uri);
        this.#stdio?.sendResourceUpdated({ uri }).catch(() => undefined);
      },
      resourcesChanged: () => {
        handler.notify.resourcesChanged();
        this.#stdio?.sendResourceListChanged().catch(() => undefined);
      },
    });
    const kept: Kept = { key, principal: caller.name, side, handler, streaming, watches, open: 0, lastUsed: Date.now() };
    // It is its credential's: dropped when that expires (the table's; its listens end with their completion; revocation: endPrincipal).
    place.add(key, kept);
    return kept;
  }

  #drop(kept: Kept): void {
    if (this.#kept.get(kept.key) === kept) this.#kept.delete(kept.key);
    void Promise.all([kept.handler.close(), kept.streaming.close()])
      .then(() => kept.side.close())
      .catch((error: unknown) => this.options.log.warn(`mcp: closing a connection: ${message(error)}`));
  }

  /** A principal's credential went (revoked, expired): its streams end, its connections close. */
  endPrincipal(name: string): number {
    let streams = 0;
    for (const kept of this.#kept.values()) if (kept.principal === name) streams += kept.open;
    this.#kept.endWhere((kept) => kept.principal === name, "its credential was revoked");
    return streams;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    const all = this.#kept.clear();
    for (const kept of all) kept.side.closing = true;
    await Promise.allSettled([this.#shared.close(), ...all.flatMap((k) => [k.handler.close(), k.streaming.close()])]);
    await Promise.allSettled(all.map((k) => k.side.close()));
  }
}

/** The caller as the SDK passes it to handlers (AuthInfo: its expiry in seconds). */
function authOf(caller: McpCaller): AuthInfo {
  return {
    token: caller.credential,
    clientId: caller.name,
    scopes: [caller.role],
    ...(caller.expiresAt != null ? { expiresAt: Math.floor(caller.expiresAt / 1000) } : {}),
  };
}

/** The client a request names in its _meta (its kept connection is the client's), or null. */
function clientOf(body: unknown): ClientInfo {
  const meta = (body as { params?: { _meta?: Record<string, unknown> } } | null)?.params?._meta;
  const info = meta?.[META.client] as { name?: unknown; version?: unknown } | undefined;
  return info && typeof info.name === "string" && info.name !== ""
    ? { name: info.name.slice(0, 200), version: typeof info.version === "string" ? info.version.slice(0, 100) : "unknown" }
    : null;
}
