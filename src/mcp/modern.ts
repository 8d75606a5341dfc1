import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type AuthInfo, createMcpHandler, type McpHttpHandler } from "@modelcontextprotocol/server";
import { z } from "zod";
import { factsChanged, SpoolRpcError } from "../client/spool-client.js";
import { INSTRUCTIONS, McpBridge } from "./bridge.js";
import { bridgeOptionsFor, type McpCaller, mayDecide } from "./caller.js";
import { answerOf, approvalForm, changedNote, factsShown, type Shown } from "./decision.js";
import type { McpExtras } from "./extras.js";
import { ListenWatches, listenedUris } from "./listen-watch.js";
import type { ServerDeps } from "./modern-call.js";
import { listen } from "./modern-listen.js";
import type { Reply } from "./modern-reply.js";
import { cancelTask, createdTask, DECISION_KEY, type TaskCaller, taskView, updateTask } from "./modern-tasks.js";
import { CODES, declaresTasks, elicitsForm, idOrNull, META, MODERN_VERSION, ModernError, type ModernRequest, TASKS_EXTENSION } from "./modern-wire.js";
import { RequestStateError, RequestStates, requestDigest } from "./request-state.js";
import { listResources, readResource, resourceTemplates } from "./resources.js";
import { follow, propose } from "./run-command.js";
import { spoolServer } from "./server.js";
import type { BridgeLog } from "./spool-side.js";
import { failure, message } from "./text.js";
import { RunCommandArgs } from "./tool-schemas.js";
import { callTool, isTool, listTools } from "./tools.js";
import { answerError, sendResponse, webRequest } from "./web-http.js";

/*
 * MCP 2026-07-28 at /mcp, beside the 2025-11-25 sessions (http.ts): no initialize and no session, each POST one
 * request carrying its protocol version and the client's capabilities. The tools and resources are the same
 * table and functions a 2025-11-25 session's server answers with (tools.ts, resources.ts), on an McpBridge's
 * Spool side; its Spool connection, with the caller's credential, is
 * kept for later requests of the same caller, client and project (a cache, never a session: any request may
 * come to a fresh one, as after a restart). Approvals are elicited as multi round-trip requests (requestState,
 * request-state.ts) and, with the tasks extension, run_command answers a task (modern-tasks.ts). Over HTTP,
 * `serve` hands a POST to the v2 SDK's createMcpHandler (the kept connection's, with server.ts's factory); over
 * stdio, `answer` answers a line of spool mcp's stdin itself (LineReply, modern-stdio.ts).
 */

/** Where a request works: the project, mode and runner of /mcp's query. */
export interface McpTarget {
  project: { name?: string; root?: string };
  mode: "ask" | "act";
  runner?: string;
}

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
  /** Tools and resources beside Spool's own (extras.ts: the conformance suite's fixture, in test code only). */
  extras?: McpExtras | undefined;
}

export const DEFAULT_MODERN_LIMITS: ModernLimits = { maxConnections: 64, maxPerPrincipal: 4, idleMs: 5 * 60_000 };

interface Kept {
  key: string;
  principal: string;
  bridge: McpBridge;
  /** The SDK's handler serving its requests (HTTP); closing it ends its listens with their completion. */
  handler: McpHttpHandler;
  /** What its listens follow in Spool. */
  watches: ListenWatches;
  /** Drops it when its caller's credential expires. */
  expiry: NodeJS.Timeout | null;
  /** Requests under way on it. */
  open: number;
  lastUsed: number;
  /** Streams (listen, tool calls) to end when the principal's credential goes. */
  replies: Set<Reply>;
}

/** The server's capabilities under 2026-07-28, as server/discover says them. */
const CAPABILITIES = {
  tools: {},
  resources: { listChanged: true, subscribe: true },
  extensions: { [TASKS_EXTENSION]: {} },
};
/** How long a client may keep what a list returned (tools never change; a run's resources do). */
const TTL = { tools: 3_600_000, resources: 0, discover: 3_600_000 };
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
  readonly #kept = new Map<string, Kept>();
  readonly #states = new RequestStates();
  readonly #limits: ModernLimits;
  readonly #sweep: NodeJS.Timeout;
  readonly #serverInfo: { name: string; version: string };
  readonly #deps: ServerDeps;
  /** The SDK's handler for what needs no Spool connection. */
  readonly #shared: McpHttpHandler;

  constructor(private readonly options: ModernOptions) {
    this.#limits = { ...DEFAULT_MODERN_LIMITS, ...options.limits };
    this.#serverInfo = { name: "spool", version: options.version };
    this.#deps = { version: options.version, where: options.where, extras: options.extras, log: options.log, states: this.#states };
    this.#shared = createMcpHandler(() => spoolServer(this.#deps, null), { legacy: "reject" });
    this.#sweep = setInterval(() => this.#closeIdle(), Math.min(60_000, this.#limits.idleMs)).unref();
  }

  /** Spool connections kept (for tests and figures). */
  get connections(): number {
    return this.#kept.size;
  }

  /** The server's identity, in every result's `_meta`. */
  get serverInfo(): { name: string; version: string } {
    return this.#serverInfo;
  }

  /**
   * One POST that is no 2025-11-25 session's (http.ts asked the SDK's isLegacyRequest), answered by the v2 SDK's
   * createMcpHandler (its checks, JSON or SSE): on the caller's kept connection's handler when the method needs
   * one, decided here first (the project of /mcp's query, 429 past the limits), else on the shared one.
   */
  async serve(request: IncomingMessage, response: ServerResponse, body: unknown, caller: McpCaller, target: () => McpTarget): Promise<void> {
    const web = webRequest(request, response);
    const call = (body ?? {}) as { id?: unknown; method?: unknown; params?: unknown };
    const authInfo = authOf(caller);
    if (typeof call.method !== "string" || !("id" in call) || !CONNECTED.has(call.method))
      return sendResponse(await this.#shared.fetch(web, { parsedBody: body, authInfo }), response);
    const id = idOrNull(call.id);
    // Its kept connection is decided before the SDK reads the request: one that cannot name what it acts on has none.
    const named = NAMED_BY[call.method];
    if (named && request.headers["mcp-name"] === undefined)
      return answerError(response, 400, `Header mismatch: Mcp-Name is missing (${call.method} names its ${named})`, {}, CODES.headerMismatch, { id });
    const listening = call.method === "subscriptions/listen" ? listenedUris(call.params) : null;
    if (listening && "refused" in listening) return answerError(response, 200, listening.refused, {}, CODES.invalidParams, { id });
    let kept: Kept;
    try {
      kept = this.#connection(caller, target(), clientOf(body));
    } catch (error) {
      if (!(error instanceof ModernError)) throw error;
      return answerError(response, error.status, error.message, {}, error.code, { id });
    }
    kept.open += 1;
    kept.lastUsed = Date.now();
    let release = () => {};
    try {
      if (listening) {
        let session: Awaited<ReturnType<typeof kept.bridge.side.ready>>;
        try {
          session = await kept.bridge.side.ready();
        } catch (error) {
          return answerError(response, 200, `Spool refused it: ${message(error)}`, {}, CODES.invalidParams, { id });
        }
        const answered = await kept.handler.fetch(web, { parsedBody: body, authInfo });
        // Its stream is open (the ack went first): what it follows is watched from now on, until it ends.
        release = kept.watches.acquire(session, listening.uris, listening.listChanged);
        return await sendResponse(answered, response);
      }
      await sendResponse(await kept.handler.fetch(web, { parsedBody: body, authInfo }), response);
    } finally {
      release();
      kept.open -= 1;
      kept.lastUsed = Date.now();
    }
  }

  /** One checked request answered on `reply`, whichever transport carries it (HTTP here, stdio in modern-stdio.ts). */
  async answer(reply: Reply, checked: ModernRequest, caller: McpCaller, target: () => McpTarget): Promise<void> {
    // A stream is its credential's: it closes when that expires (revocation: endPrincipal).
    const expiry = caller.expiresAt != null ? setTimeout(() => reply.close(), Math.min(Math.max(0, caller.expiresAt - Date.now()), 2 ** 31 - 1)).unref() : null;
    try {
      await this.#dispatch(reply, checked, caller, target);
    } catch (error) {
      if (!(error instanceof ModernError) && !(error instanceof SpoolRpcError) && typeof (error as { code?: unknown })?.code !== "number")
        this.options.log.warn(`mcp: ${checked.method} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      reply.error(error instanceof SpoolRpcError ? new ModernError(200, CODES.invalidParams, `Spool refused it: ${error.message}`) : error);
    } finally {
      if (expiry) clearTimeout(expiry);
    }
  }

  async #dispatch(reply: Reply, call: ModernRequest, caller: McpCaller, targetOf: () => McpTarget): Promise<void> {
    const { method, params } = call;
    if (method === "server/discover") {
      return reply.result({
        supportedVersions: [MODERN_VERSION],
        capabilities: CAPABILITIES,
        instructions: this.options.where ? `${INSTRUCTIONS} ${this.options.where}` : INSTRUCTIONS,
        ttlMs: TTL.discover,
        cacheScope: "public",
      });
    }
    const known = [
      "tools/list",
      "tools/call",
      "resources/list",
      "resources/read",
      "resources/templates/list",
      "subscriptions/listen",
      "tasks/get",
      "tasks/update",
      "tasks/cancel",
    ];
    if (!known.includes(method)) throw new ModernError(404, CODES.methodNotFound, `Method not found: ${method}`);
    if (method.startsWith("tasks/") && !declaresTasks(call.capabilities))
      throw new ModernError(400, CODES.missingCapability, `${method} is the tasks extension's: declare ${TASKS_EXTENSION} in clientCapabilities.extensions`, {
        requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } },
      });
    if ("inputResponses" in params && !inputResponsesOk(params.inputResponses))
      throw new ModernError(200, CODES.invalidParams, "inputResponses is an object: each key of the inputRequests answered, with its result (an object)");
    // Where the request works (/mcp's query); what needs no Spool connection (the tool list) is answered without.
    if (method === "tools/list") return reply.result({ ...listTools(false, this.options.extras), ttlMs: TTL.tools, cacheScope: "public" });
    if (method === "resources/templates/list") return reply.result({ ...resourceTemplates(this.options.extras), ttlMs: TTL.resources, cacheScope: "public" });
    const target = targetOf();
    const kept = this.#connection(caller, target, call.client);
    kept.open += 1;
    kept.lastUsed = Date.now();
    kept.replies.add(reply);
    try {
      const bridge = kept.bridge;
      const session = await bridge.side.ready();
      const taskCaller: TaskCaller = { mayDecide: mayDecide(caller), elicits: elicitsForm(call.capabilities) };
      switch (method) {
        case "resources/list":
          return reply.result({ ...(await listResources(kept.bridge.side)), ttlMs: TTL.resources, cacheScope: "private" });
        case "resources/read":
          try {
            return reply.result({ ...(await readResource(kept.bridge.side, String(params.uri))), ttlMs: TTL.resources, cacheScope: "private" });
          } catch (error) {
            // 2026-07-28: a resource not found is Invalid Params.
            const code = (error as { code?: unknown }).code;
            if (code === -32002 || code === CODES.invalidParams) throw new ModernError(200, CODES.invalidParams, message(error), { uri: params.uri });
            throw error;
          }
        case "tools/call":
          return await this.#call(reply, kept, call, caller, taskCaller);
        case "subscriptions/listen":
          reply.stream();
          return await listen(kept.bridge.side, session, reply, call, KEEPALIVE_MS);
        case "tasks/get":
          return reply.result(await taskView(session, String(params.taskId), taskCaller));
        case "tasks/update":
          await updateTask(session, String(params.taskId), params.inputResponses, taskCaller, session.who);
          return reply.result({});
        case "tasks/cancel":
          await cancelTask(session, String(params.taskId));
          return reply.result({});
      }
    } finally {
      kept.open -= 1;
      kept.lastUsed = Date.now();
      kept.replies.delete(reply);
    }
  }

  /** tools/call: run_command as a task, as an elicited approval (MRTR), or as the call it always was. */
  async #call(reply: Reply, kept: Kept, call: ModernRequest, caller: McpCaller, taskCaller: TaskCaller): Promise<void> {
    const { params } = call;
    const side = kept.bridge.side;
    // A tool Spool does not offer is a protocol error (the spec's -32602), not a result the model reads as the tool's.
    if (typeof params.name !== "string" || !isTool(params.name, this.options.extras))
      throw new ModernError(200, CODES.invalidParams, `Unknown tool: ${String(params.name)} (tools/list names the tools)`);
    if (params.name === "run_command") {
      const args = z
        .object(RunCommandArgs)
        .strict()
        .safeParse(params.arguments ?? {});
      if (!args.success)
        throw new ModernError(
          200,
          CODES.invalidParams,
          `run_command: ${args.error.issues.map((i) => `${i.path.join(".") || "arguments"}: ${i.message}`).join("; ")}`,
        );
      const session = await side.ready();
      const digest = requestDigest("tools/call", "run_command", params.arguments ?? {});
      const extra = this.#extra(reply, call);
      // The retry of an elicited approval: its state is checked before anything else is done.
      if (params.requestState !== undefined) {
        let state: Awaited<ReturnType<RequestStates["redeem"]>>;
        try {
          state = await this.#states.redeem(String(params.requestState), { principal: caller.name, request: digest });
        } catch (error) {
          if (error instanceof RequestStateError) throw new ModernError(200, CODES.invalidParams, error.message);
          throw error;
        }
        const responses = (params.inputResponses ?? {}) as Record<string, unknown>;
        const response = responses[DECISION_KEY] as { action?: unknown; content?: Record<string, unknown> } | undefined;
        const answer = response && typeof response === "object" ? answerOf(response) : null;
        if (answer) {
          try {
            await session.client.call(
              "run/resolve",
              answer.decision === "accept"
                ? { run: state.run, path: state.path, decision: "accept", facts: state.facts, ...(answer.reason ? { reason: answer.reason } : {}) }
                : { run: state.run, path: state.path, decision: "reject", reason: answer.reason ?? `declined in ${session.who}` },
            );
          } catch (error) {
            // The facts changed since the form showed them (nothing ran): asked again on the facts now, saying why.
            if (factsChanged(error)) {
              const shown = await factsShown(session, state.run, state.path);
              if (shown.proposed) return reply.result(await this.#ask(state, shown, digest, caller.name, changedNote(error.message)));
            } else if (error instanceof SpoolRpcError && error.errorCode === "CONFLICT")
              throw new ModernError(200, CODES.invalidParams, `${state.path} was decided already: this answer decides nothing (${error.message})`);
            else throw error;
          }
        }
        if (session.run !== state.run)
          return reply.result({
            ...failure(`${state.path} of run ${state.run} was ${answer?.decision ?? "left"}ed; read_output reaches it by spool://${state.run}/${state.path}`),
          });
        reply.stream();
        return reply.result({ ...(await follow(side, args.data, extra, session, { run: state.run, path: state.path })) });
      }
      const tasks = declaresTasks(call.capabilities);
      const asks = mayDecide(caller) && elicitsForm(call.capabilities);
      if (tasks || asks) {
        const proposed = await propose(side, args.data, session, params, extra);
        if ("content" in proposed) return reply.result({ ...proposed });
        if (tasks) return reply.result(await createdTask(session, proposed.run, proposed.path, taskCaller));
        // Decided already (an always-allow rule): no question to ask.
        const log = await session.client.call("entry/get", { run: proposed.run, path: proposed.path, limit: 1 });
        if (log.producer?.state === "proposed")
          return reply.result(await this.#ask(proposed, await factsShown(session, proposed.run, proposed.path), digest, caller.name));
        reply.stream();
        return reply.result({ ...(await follow(side, args.data, extra, session, proposed)) });
      }
    }
    reply.stream();
    const args = params.arguments as Record<string, unknown> | undefined;
    reply.result({ ...(await callTool(side, String(params.name), args, this.#extra(reply, call))) });
  }

  /** The input_required answer that asks the caller to decide a proposal on the facts shown (MRTR), with its requestState. */
  async #ask(proposal: { run: string; path: string }, shown: Shown, request: string, principal: string, note?: string) {
    const { run, path } = proposal;
    return {
      resultType: "input_required",
      inputRequests: { [DECISION_KEY]: { method: "elicitation/create", params: approvalForm(run, path, shown, note) } },
      requestState: await this.#states.issue({ run, path, facts: shown.revision, request }, principal),
    };
  }

  /** What an SDK handler gets with a request: the stream's cancel, its notifications, its _meta and headers. */
  #extra(reply: Reply, call: ModernRequest) {
    return {
      signal: reply.signal,
      requestId: call.id ?? 0,
      _meta: call.params._meta as Record<string, unknown>,
      sendNotification: async (n: { method: string; params?: Record<string, unknown> }) => reply.notify(n),
      sendRequest: async () => {
        throw new ModernError(200, CODES.internal, "MCP 2026-07-28 sends no requests to the client");
      },
      requestInfo: reply.headers ? { headers: reply.headers } : undefined,
    } as never;
  }

  /** The Spool connection kept for this caller, client and project, opened when there is none. */
  #connection(caller: McpCaller, target: McpTarget, named: ModernRequest["client"]): Kept {
    const client = named ?? { name: "MCP client", version: "unknown" };
    const key = createHash("sha256")
      .update(JSON.stringify([caller.credential, target, client.name]))
      .digest("base64url");
    const found = this.#kept.get(key);
    if (found) {
      this.#kept.delete(key);
      this.#kept.set(key, found);
      return found;
    }
    const mine = [...this.#kept.values()].filter((k) => k.principal === caller.name);
    if (mine.length >= this.#limits.maxPerPrincipal) this.#evict(mine, `${caller.name} holds ${mine.length} already`);
    if (this.#kept.size >= this.#limits.maxConnections) this.#evict([...this.#kept.values()], "the server holds its most");
    const options = bridgeOptionsFor(caller, target, this.options, this.options.via ?? `MCP ${MODERN_VERSION} over HTTP, ${caller.name}`);
    const bridge = new McpBridge({ ...options, client });
    const connection = { caller, side: bridge.side };
    const handler = createMcpHandler(() => spoolServer(this.#deps, connection), { legacy: "reject", keepAliveMs: KEEPALIVE_MS });
    const watches = new ListenWatches(bridge.side, handler.notify);
    const kept: Kept = { key, principal: caller.name, bridge, handler, watches, expiry: null, open: 0, lastUsed: Date.now(), replies: new Set() };
    // It is its credential's: dropped when that expires (its listens end with their completion; revocation: endPrincipal).
    if (caller.expiresAt != null) kept.expiry = setTimeout(() => this.#drop(kept), Math.min(Math.max(0, caller.expiresAt - Date.now()), 2 ** 31 - 1)).unref();
    this.#kept.set(key, kept);
    return kept;
  }

  /** Closes the least recently used idle one of `among`; with none idle the request is refused (429). */
  #evict(among: Kept[], why: string): void {
    const idle = among.find((k) => k.open === 0);
    if (!idle) throw new ModernError(429, CODES.internal, `Too many MCP requests under way (${why}); retry when one ends`);
    this.#drop(idle);
  }

  #drop(kept: Kept): void {
    if (this.#kept.get(kept.key) === kept) this.#kept.delete(kept.key);
    if (kept.expiry) clearTimeout(kept.expiry);
    for (const reply of kept.replies) reply.close();
    void kept.handler
      .close()
      .then(() => kept.bridge.close())
      .catch((error: unknown) => this.options.log.warn(`mcp: closing a connection: ${message(error)}`));
  }

  #closeIdle(): void {
    const now = Date.now();
    for (const kept of [...this.#kept.values()]) if (kept.open === 0 && now - kept.lastUsed > this.#limits.idleMs) this.#drop(kept);
  }

  /** A principal's credential went (revoked, expired): its streams end, its connections close. */
  endPrincipal(name: string): number {
    let ended = 0;
    for (const kept of [...this.#kept.values()]) {
      if (kept.principal !== name) continue;
      ended += Math.max(kept.open, kept.replies.size);
      this.#drop(kept);
    }
    return ended;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    const all = [...this.#kept.values()];
    this.#kept.clear();
    // The calls these closes abort say the client's connection closed, not that the client cancelled them.
    for (const kept of all) kept.bridge.side.closing = true;
    for (const kept of all) for (const reply of kept.replies) reply.close();
    for (const kept of all) if (kept.expiry) clearTimeout(kept.expiry);
    await Promise.allSettled([this.#shared.close(), ...all.map((k) => k.handler.close())]);
    await Promise.allSettled(all.map((k) => k.bridge.close()));
  }
}

/** Whether a caller's role may decide a proposal (a person's or an admin's); an agent's never accepts. */

/** An InputResponses map: an object whose every value is a result object. */
function inputResponsesOk(value: unknown): boolean {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  return Object.values(value).every((v) => v !== null && typeof v === "object" && !Array.isArray(v));
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
function clientOf(body: unknown): ModernRequest["client"] {
  const meta = (body as { params?: { _meta?: Record<string, unknown> } } | null)?.params?._meta;
  const info = meta?.[META.client] as { name?: unknown; version?: unknown } | undefined;
  return info && typeof info.name === "string" && info.name !== ""
    ? { name: info.name.slice(0, 200), version: typeof info.version === "string" ? info.version.slice(0, 100) : "unknown" }
    : null;
}
