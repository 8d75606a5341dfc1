import type { Server, ServerContext } from "@modelcontextprotocol/server";
import { z } from "zod";
import { sayReconnects } from "../../client/reconnect-log.js";
import { SpoolClient, SpoolRpcError } from "../../client/spool-client.js";
import { EntryPath } from "../../protocol/common.js";
import type { ResultOf } from "../../protocol/methods/index.js";
import type { SpoolNotifications } from "../../protocol/notifications.js";
import { producerOf } from "../../protocol/views.js";
import type { McpExtras } from "./extras.js";
import { parseResourceUri } from "./resource-uri.js";
import { STATUS, ToolFailure } from "./text.js";

/** What the bridge logs (to stderr: stdout carries MCP messages only). */
export interface BridgeLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface McpBridgeOptions {
  /** The Spool server (started when none answers): its URL and token. */
  server(): Promise<{ url: string; token: string; door?: string | undefined }>;
  /** The project: its root, and its name when a marker names it. */
  project: { root?: string | undefined; name?: string | undefined };
  /** ask: every command runs read-only (the env tool); act: commands with side effects (sh). */
  mode: "ask" | "act";
  /** The runner this connection's commands are proposed for (a run_command's `runner` overrides it); none: the decision picks it. */
  runner?: string | undefined;
  /**
   * The role its connection acts with (at most its credential's): `agent` (the default) proposes, cancels and
   * withdraws in its own run and never decides; `person` also lets the MCP client's elicitation decide.
   */
  role?: "agent" | "person";
  /** Which Spool server it is a client of, in words the MCP client gets with the instructions (stdio: the home's). */
  where?: string | undefined;
  version: string;
  log: BridgeLog;
  /** How the agent came, in its Spool connection's name (what decisions and lists show): default "spool mcp". */
  via?: string;
  /** Tools and resources beside Spool's own (extras.ts: the conformance suite's fixture, in test code only). */
  extras?: McpExtras | undefined;
  /** The MCP client, as a request names it before the SDK's server has it (a 2025-11-25 initialize over HTTP; MCP 2026-07-28: each request's clientInfo). */
  client?: { name: string; version: string } | undefined;
}

/**
 * What a tool call gets of the MCP request that carries it, whichever revision it came by (a 2025-11-25 session's
 * handler context, extraOf below, or a 2026-07-28 request, src/mcp/stateless/call.ts): its cancel, its `_meta` (a progress token),
 * notifications related to it, requests to the client (2025-11-25 only), and over HTTP the request's headers.
 */
export interface Extra {
  readonly signal: AbortSignal;
  readonly requestId: string | number;
  readonly _meta?: (Record<string, unknown> & { progressToken?: string | number }) | undefined;
  sendNotification(notification: { method: string; params?: Record<string, unknown> }): Promise<void>;
  sendRequest(request: { method: string; params?: Record<string, unknown> }): Promise<Record<string, unknown>>;
  readonly requestInfo?: { headers?: Record<string, string | string[] | undefined> } | undefined;
}

/** Any result a client's answer may be (an added tool reads what it asked for itself). */
const anyResult = z.looseObject({});

/** A 2025-11-25 handler's context (the v2 SDK's ServerContext) as a tool call's Extra. */
export function extraOf(ctx: ServerContext): Extra {
  const traceparent = ctx.http?.req?.headers.get("traceparent");
  return {
    signal: ctx.mcpReq.signal,
    requestId: ctx.mcpReq.id,
    _meta: ctx.mcpReq._meta as Extra["_meta"],
    sendNotification: (notification) => ctx.mcpReq.notify(notification as never),
    sendRequest: (request) => ctx.mcpReq.send(request as never, anyResult),
    requestInfo: traceparent ? { headers: { traceparent } } : undefined,
  };
}
export type Resolved = SpoolNotifications["run/resolved"];
export type LogEntry = ResultOf<"entry/get">;

/** One MCP connection's Spool side: a connection to the server, joined to the project, and the run it works in. */
export interface Session {
  client: SpoolClient;
  /** The run, created at the first run_command (a connection that only looks adds no run to the project). */
  run: string | null;
  creating: Promise<string> | null;
  /** The MCP client's name, as decisions and reasons name it. */
  who: string;
}

/**
 * What the Spool side asks of the MCP connection it answers on, when there is one: a 2025-11-25 session's server
 * (log messages, the resource list's changes, the client's name and capabilities, elicitation). A 2026-07-28
 * caller's side has none: each request is answered on its own, and what it is told goes on its own stream.
 */
export type McpPeer = Pick<Server, "sendLoggingMessage" | "sendResourceListChanged" | "getClientVersion" | "getClientCapabilities" | "elicitInput">;

/** How long closing waits for the calls it cancels to be confirmed by the server. */
const CLOSE_WAIT_MS = 10_000;

/** Decisions remembered before anyone waits for them (they can arrive before proposal/create's reply). */
const MAX_EARLY = 256;
/** Commands list_commands and resources/list show at most. */
export const LIST_LIMIT = 500;

/**
 * What every part of the bridge shares, in either revision: the MCP connection it answers on (a 2025-11-25
 * session's server; none for 2026-07-28), its options and log, and the Spool side (opened once, at the first
 * need), with the decisions waited for and the tool calls still in flight.
 */
export class SpoolSide {
  /** Set once the MCP connection closes: a call it aborts then says the client closed the connection. */
  closing = false;
  /** Waiters for the decision on a proposal, by log path. */
  readonly waiters = new Map<string, (notice: Resolved) => void>();
  /** Tool calls under way (closing lets them reach the server). */
  readonly inFlight = new Set<Promise<unknown>>();
  /** What the bridge logs goes to its own log and, as MCP log messages (at the level the client set), to the client. */
  readonly log: BridgeLog;
  /** Decisions that came before anyone waited for them. */
  readonly #early = new Map<string, Resolved>();
  #session: Promise<Session> | null = null;

  constructor(
    readonly peer: McpPeer | null,
    readonly options: McpBridgeOptions,
  ) {
    this.log = {
      info: (text) => {
        options.log.info(text);
        peer?.sendLoggingMessage({ level: "info", logger: "spool", data: text }).catch(() => undefined);
      },
      warn: (text) => {
        options.log.warn(text);
        peer?.sendLoggingMessage({ level: "warning", logger: "spool", data: text }).catch(() => undefined);
      },
    };
  }

  /** The Spool side, opened once; a failure (no server, a bad token) is reported to the call and tried again at the next. */
  ready(): Promise<Session> {
    if (!this.#session) {
      const opening = this.#open();
      this.#session = opening;
      opening.catch(() => {
        if (this.#session === opening) this.#session = null;
      });
    }
    return this.#session;
  }

  /** The Spool side if it was opened, else null (for closing). */
  async opened(): Promise<Session | null> {
    return (await this.#session?.catch(() => null)) ?? null;
  }

  /** A decision that came before anyone waited for it, taken (it is given once). */
  takeEarly(path: string): Resolved | undefined {
    const early = this.#early.get(path);
    this.#early.delete(path);
    return early;
  }

  async #open(): Promise<Session> {
    const info = this.options.client ?? this.peer?.getClientVersion();
    const who = info?.name || "MCP client";
    const { url, token, door } = await this.options.server();
    const project = this.options.project;
    const client = await SpoolClient.open(url, {
      token,
      door,
      reconnect: {
        ...(project.name ? { project: project.name } : {}),
        ...(project.root ? { root: project.root } : {}),
        client: { name: `${who} (${this.options.via ?? "spool mcp"})`, version: info?.version ?? "unknown" },
        role: this.options.role ?? "agent",
      },
    });
    // In its log and to the MCP client: why the Spool connection does not come back.
    const where = project.name ? `project ${JSON.stringify(project.name)}` : `the project at ${project.root ?? "its directory"}`;
    sayReconnects(client, `${this.options.via ?? "spool mcp"}: ${where}`, this.log);
    const session: Session = { client, run: null, creating: null, who };
    client.on("run/resolved", (p: Resolved) => {
      if (p.run !== session.run) return;
      const waiter = this.waiters.get(p.path);
      if (waiter) waiter(p);
      else {
        this.#early.set(p.path, p);
        if (this.#early.size > MAX_EARLY) this.#early.delete(this.#early.keys().next().value!);
      }
      if (p.decision === "accept") this.peer?.sendResourceListChanged().catch(() => undefined);
    });
    // Decisions made while the connection was down are read from the log entries.
    client.onReconnect(() => {
      for (const path of this.waiters.keys()) void this.decidedAlready(session, path).then((n) => n && this.waiters.get(path)?.(n));
    });
    return session;
  }

  /**
   * After the MCP connection closed (or the kept connection was dropped): the calls it aborted reject their
   * proposals and cancel their commands, given a while to reach the server; then the Spool connection closes.
   */
  async close(): Promise<void> {
    this.closing = true;
    const session = await this.opened();
    // The calls the close aborted reject their proposals and cancel their commands: let them reach the server.
    await new Promise((resolve) => setImmediate(resolve));
    // Within reason: with the server unreachable, a cancel cannot be confirmed (the server's grace period ends it).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    session?.client.close();
  }

  /** This connection's run, created the first time a command needs it (titled with the MCP client's name). */
  runOf(session: Session): Promise<string> {
    session.creating ??= session.client.call("run/create", { title: session.who, mode: this.options.mode }).then((created) => {
      session.run = created.run.alias;
      this.log.info(`spool mcp: ${session.who} works in run ${session.run}`);
      return session.run;
    });
    session.creating.catch(() => (session.creating = null));
    return session.creating;
  }

  /** The run a path without a spool:// URI means: this connection's, once it ran a command. */
  ownRun(session: Session, given: string): string {
    if (session.run === null)
      throw new ToolFailure(`no command "${given}": this connection has run no command yet (another run's command is reached by its spool://RUN/PATH URI)`);
    return session.run;
  }

  /** The decision recorded in a proposal's log entry, or null while it waits. */
  async decidedAlready(session: Session, path: string): Promise<Resolved | null> {
    const log = await session.client.call("entry/get", { run: session.run!, path, limit: 1 }).catch(() => null);
    if (!log || log.status === STATUS.proposed) return null;
    const p = producerOf(log);
    return {
      run: session.run!,
      path,
      decision: log.status === STATUS.rejected ? "reject" : "accept",
      status: log.status,
      runner: p.runner,
      resolvedBy: p.resolvedBy ?? "someone",
      resolver: { kind: "connection", connectionId: null, client: null, rule: null },
      reason: p.reason,
      channels: [],
      loop: null,
      toolCallId: null,
    };
  }

  /** A path argument as run and log path: a spool:// URI, a log path, or a channel path (its producer's log path). */
  async target(session: Session, given: string): Promise<{ run: string; path: string; log: LogEntry }> {
    const parsed = parseResourceUri(given);
    const path = parsed?.path ?? given;
    if (!isEntryPath(given, parsed))
      throw new ToolFailure(
        `${JSON.stringify(given)} is not a command's path: give the path run_command gave (log://turn_1/sh/make, or one of its channels such as sh://turn_1/make_1), or spool://RUN/PATH for another run's`,
      );
    const run = parsed?.run ?? this.ownRun(session, given);
    let entry: LogEntry;
    try {
      entry = await session.client.call("entry/get", { run, path, limit: 1 });
    } catch (error) {
      if (error instanceof SpoolRpcError && (error.errorCode === "NOT_FOUND" || error.errorCode === "INVALID_PARAMS"))
        throw new ToolFailure(`no command "${given}" in run ${run}: ${error.message}`);
      throw error;
    }
    if (path.startsWith("log://")) return { run, path, log: entry };
    const logPath = entry.channel?.log;
    if (!logPath) throw new ToolFailure(`"${given}" is not a command's output (no producer is recorded for it)`);
    return { run, path: logPath, log: await session.client.call("entry/get", { run, path: logPath, limit: 1 }) };
  }
}

/** A producer's output channels (stdout 1, stderr 2, …), from its log entry's typed producer. */
export function channelsOf(log: LogEntry): { channel: number; path: string }[] {
  return producerOf(log)
    .channels.filter((c) => c.channel > 0)
    .map((c) => ({ channel: c.channel, path: c.path }));
}

/**
 * Whether a tool's `path` argument can name an entry: an entry's path, or a spool://RUN/PATH URI (`parsed`, its
 * reading); a spool:// URI that names no entry (`spool://RUN/`) is none. Said by the tool, not as the RPC's bare
 * "Invalid params".
 */
export function isEntryPath(given: string, parsed: { path: string } | null): boolean {
  return EntryPath.safeParse(parsed?.path ?? given).success && !(parsed === null && given.startsWith("spool://"));
}
