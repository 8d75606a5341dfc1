import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  ListResourcesRequestSchema,
  type ListResourcesResult,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  type ServerNotification,
  type ServerRequest,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { ConnectionClosedError, SpoolClient, SpoolRpcError, type StreamWatch } from "../client/spool-client.js";
import { Traceparent } from "../protocol/common.js";
import type { ResultOf } from "../protocol/methods/index.js";
import type { SpoolNotifications } from "../protocol/notifications.js";
import { defaultRunnerName, escapeControl, factsText } from "../protocol/proposal-facts.js";
import { runState } from "../protocol/shown-state.js";
import { producerOf } from "../protocol/views.js";
import { SpoolTaskStore, TASK_POLL_MS } from "./tasks.js";
import { KEY_NAMES, keyBytes, newestLines, STATUS, statusWord } from "./text.js";

/** What the bridge logs (to stderr: stdout carries MCP messages only). */
export interface BridgeLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface McpBridgeOptions {
  /** The Spool server (started when none answers): its URL and token. */
  server(): Promise<{ url: string; token: string }>;
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
  version: string;
  log: BridgeLog;
  /** How the agent came, in its Spool connection's name (what decisions and lists show): default "spool mcp". */
  via?: string;
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;
type Resolved = SpoolNotifications["run/resolved"];
type LogEntry = ResultOf<"entry/get">;

/** One MCP connection's Spool side: a connection to the server, joined to the project, and the run it works in. */
interface Session {
  client: SpoolClient;
  /** The run, created at the first run_command (a connection that only looks adds no run to the project). */
  run: string | null;
  creating: Promise<string> | null;
  /** The MCP client's name, as decisions and reasons name it. */
  who: string;
}

/** The terminal a `tty: true` command gets. */
const DEFAULT_TTY = { cols: 120, rows: 40 };
/** How often a waiting or quiet call tells the client it is alive (clients that reset their timeout on progress keep waiting). */
const HEARTBEAT_MS = 10_000;
/** Progress messages and resource updates at most this often per call or resource. */
const THROTTLE_MS = 200;
/** An elicitation stays open this long at most (a person may be away); the proposal waits on after it. */
const ELICITATION_TIMEOUT_MS = 24 * 3600 * 1000;
/** Decisions remembered before anyone waits for them (they can arrive before proposal/create's reply). */
const MAX_EARLY = 256;
/** Tokens of output a run_command result shows at most (head, tail and failure lines of a big output). */
const OUTPUT_BUDGET_TOKENS = 8000;
/** How long closing waits for the calls it cancels to be confirmed by the server. */
const CLOSE_WAIT_MS = 10_000;
/** Commands list_commands shows at most. */
const LIST_LIMIT = 500;

const TOOL_DESCRIPTIONS = {
  run_command:
    "Runs a shell command through Spool. It becomes a proposal that a person approves or rejects (in the Spool web view, `spool pending`/`spool approve`, an ACP editor, or here when this client supports elicitation) unless an 'always allow' rule of the run accepts it. Once accepted it runs on a Spool runner (local process, Docker or SSH; sandboxed where the runner can), its output streams as progress notifications, and the result is what a terminal would finally show (long output cut to a head and a tail, failure lines from the middle kept) with the exit code, signal, duration and the command's path. It runs on the runner named by `runner` (or the one spool mcp was started with), which the person deciding is shown. With background: true it returns as soon as the command is accepted; reach it later by its path with read_output, send_input, signal and cancel. A rejection comes back as an error result naming who rejected it and why.",
  read_output:
    "Reads a command's output by its path (the log path run_command returned, one channel's path, or a spool:// resource URI): all of it (a big output cut to a head and a tail with the failure lines of the middle, and a note on how to read the rest), the last `tail` lines, or `limit` lines from `line`; `view` model (default: as a terminal shows it) or raw (the bytes as text).",
  send_input:
    "Types into a running command: `text` as it is, then `keys` by name, then (with eof) ends its input. For a command started with tty, keys are what a terminal sends.",
  signal: "Sends a signal (INT, TERM, HUP, QUIT, USR1, USR2, WINCH, KILL) to a running command's process group. The command ends only if it does.",
  cancel: `Stops a command: a running one is cancelled (its process is killed, its output kept); a proposal still waiting for a decision is withdrawn (rejected).`,
  list_commands: "Lists this connection's commands (its Spool run): path, state (pending, running, done, failed, cancelled, rejected), exit code and command.",
} as const;

/** A zod schema of a tool's input shape (the SDK turns it into the JSON Schema `tools/list` shows). */
const PathArg = z.string().min(1).describe("A command's log path (log://turn_N/sh/slug), one of its channels, or its spool://RUN/PATH resource URI");

const RunCommandArgs = {
  command: z.string().min(1).describe("The shell command (run by /bin/sh -c)"),
  cwd: z.string().min(1).optional().describe("Working directory relative to the project root (default: the root); it may not lead outside it"),
  env: z.record(z.string(), z.string()).optional().describe("Extra environment variables"),
  tty: z
    .union([z.boolean(), z.object({ cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) })])
    .optional()
    .describe(`Run it under a pseudo-terminal (true: ${DEFAULT_TTY.cols}×${DEFAULT_TTY.rows}, or {cols, rows}); send_input then types into it`),
  timeout_ms: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600 * 1000)
    .optional()
    .describe("Kill it after this long (default: the server's command time limit)"),
  background: z
    .boolean()
    .optional()
    .describe(
      "Long-running work (a dev server, a watcher): return as soon as it is accepted, with its path, instead of waiting for it to finish; its time limit is the server's longer one for background work unless timeout_ms is given",
    ),
  runner: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe(
      "The Spool runner to run it on (a name from `spool runners`: the local machine, a Docker container, an SSH host), shown to the person who decides; default: the one spool mcp was started with (--runner), else the one the decision picks. An unknown name is refused before anything is proposed",
    ),
};

const ReadOutputArgs = {
  path: PathArg,
  tail: z.number().int().min(1).optional().describe("Only the last N lines"),
  line: z.number().int().min(1).optional().describe("First line of a slice (1-based)"),
  limit: z.number().int().min(1).optional().describe("Lines in the slice"),
  offset: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe("With line (and no limit): the rest of that one line from this byte — the next part of a line longer than one read returns"),
  view: z.enum(["model", "raw"]).optional().describe("model (default): as a terminal finally shows it; raw: the bytes as text"),
};

const SendInputArgs = {
  path: PathArg,
  text: z.string().optional().describe("Text to type, as it is (add \\n or an Enter key to submit a line)"),
  keys: z.array(z.string()).optional().describe(`Keys to press after the text: ${KEY_NAMES}`),
  eof: z.boolean().optional().describe("Then end its input (stdin closes; under a terminal, ^D)"),
};

const SignalArgs = {
  path: PathArg,
  signal: z.enum(["INT", "TERM", "HUP", "QUIT", "USR1", "USR2", "WINCH", "KILL"]).describe("The signal's name without SIG"),
};

const CancelArgs = { path: PathArg, reason: z.string().optional().describe("Why (recorded with the command)") };

const ListCommandsArgs = {
  state: z
    .enum(["pending", "running", "finished", "all"])
    .optional()
    .describe("pending: waiting for a decision; running; finished (done, failed, cancelled, rejected); all (default)"),
};

const text = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }] });
const failure = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }], isError: true });
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Where a tool call can carry the caller's trace: its `_meta` (MCP's place), or over HTTP the request's headers. */
interface TraceCarrier {
  _meta?: Record<string, unknown> | undefined;
  requestInfo?: { headers?: Record<string, string | string[] | undefined> } | undefined;
}

/**
 * The W3C traceparent an agent sent with the tool call, when it is one: `_meta.traceparent`, else (MCP over HTTP)
 * the request's `traceparent` header. The command's trace continues the call's.
 */
function traceparentOf(call: TraceCarrier, transport?: TraceCarrier): { traceparent?: string } {
  for (const value of [call._meta?.traceparent, transport?._meta?.traceparent, transport?.requestInfo?.headers?.traceparent])
    if (typeof value === "string" && Traceparent.safeParse(value).success) return { traceparent: value };
  return {};
}

/** A `spool://RUN/PATH` URI of a producer (PATH is its log path, e.g. log://turn_1/sh/ls). */
export const resourceUri = (run: string, path: string) => `spool://${run}/${path}`;

/**
 * RUN and PATH of a `spool://RUN/PATH` URI; null for anything else. PATH is taken as the URI's readers pass it
 * on: percent-encoded (`log%3A%2F%2Fturn_1…`), with the scheme's `//` folded to `/` by URL normalisation
 * (`log:/turn_1/sh/ls`), or without a scheme (`turn_1/sh/ls`: a log path, as a URI's path reads best).
 */
export function parseResourceUri(uri: string): { run: string; path: string } | null {
  if (!uri.startsWith("spool://")) return null;
  const rest = uri.slice("spool://".length);
  const slash = rest.indexOf("/");
  if (slash <= 0 || slash === rest.length - 1) return null;
  let path = rest.slice(slash + 1);
  if (path.includes("%")) {
    try {
      path = decodeURIComponent(path);
    } catch {
      // Not percent-encoding after all: the path as given.
    }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/*/i.exec(path);
  if (scheme) path = `${scheme[1]}://${path.slice(scheme[0].length)}`;
  else if (/^turn_\d+\//.test(path)) path = `log://${path}`;
  return { run: rest.slice(0, slash), path };
}

/** Which lines a read returned, and where the next read goes on when the read limit cut it (or it is part of a line). */
function linesRead(entry: LogEntry): string {
  const { line, lines } = entry.range;
  if (entry.part) {
    const { offset, bytes, end } = entry.part;
    return `part of line ${line} of ${entry.lines}: bytes ${offset}-${offset + bytes}${end ? ", its end" : `; the rest: line ${line}, offset ${offset + bytes}`}`;
  }
  const shown = `lines ${lines ? `${line}-${line + lines - 1}` : "none"} of ${entry.lines}`;
  return entry.truncated ? `${shown}; cut at the read limit, the rest from line ${line + lines}` : shown;
}

/** Progress of one tool call: `notifications/progress` with the client's token, a rising count, and a message. */
class Progress {
  #count = 0;
  #timer: NodeJS.Timeout | null = null;
  #pending: string | null = null;
  #last = 0;
  #output = "";
  readonly #token: string | number | undefined;

  constructor(private readonly extra: Extra) {
    this.#token = extra._meta?.progressToken;
  }

  /** Sends `message` now (a state change). */
  say(message: string): void {
    if (this.#token === undefined || this.extra.signal.aborted) return;
    this.#pending = null;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#send(message);
  }

  /** New output: the newest lines go out, at most every THROTTLE_MS. */
  output(chunk: string): void {
    if (this.#token === undefined) return;
    // Enough of the end to find the newest lines in.
    this.#output = (this.#output + chunk).slice(-4096);
    this.#pending = newestLines(this.#output) || "(output without visible text)";
    if (this.#timer) return;
    const wait = Math.max(0, this.#last + THROTTLE_MS - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#pending !== null) this.#send(this.#pending);
      this.#pending = null;
    }, wait);
  }

  /** Sends what is pending at once (before the result, so progress never follows it). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#pending !== null) this.#send(this.#pending);
    this.#pending = null;
  }

  #send(message: string): void {
    this.#last = Date.now();
    this.#count += 1;
    this.extra
      .sendNotification({ method: "notifications/progress", params: { progressToken: this.#token!, progress: this.#count, message } })
      .catch(() => undefined);
  }
}

/**
 * `spool mcp`: an MCP server (the official SDK) that is a client of a Spool server. One MCP connection is one
 * Spool run in the project; each `run_command` is a proposal any Spool client can decide, its output comes as
 * progress and its result is the model's view of the output. Closing the connection rejects the proposals still
 * waiting and cancels the commands it was waiting on; commands started in the background go on.
 */
export class McpBridge {
  readonly mcp: McpServer;
  #session: Promise<Session> | null = null;
  #closing = false;
  /** Waiters for the decision on a proposal, by log path. */
  readonly #waiters = new Map<string, (notice: Resolved) => void>();
  /** Decisions that came before anyone waited for them. */
  readonly #early = new Map<string, Resolved>();
  /** Resource subscriptions: URI → the watch that sends `notifications/resources/updated`. */
  readonly #subscriptions = new Map<string, { watch: Promise<StreamWatch | null>; timer: NodeJS.Timeout | null }>();

  /** What the bridge logs goes to its own log and, as MCP log messages (at the level the client set), to the client. */
  readonly #log: BridgeLog = {
    info: (text) => {
      this.options.log.info(text);
      this.mcp.server.sendLoggingMessage({ level: "info", logger: "spool", data: text }).catch(() => undefined);
    },
    warn: (text) => {
      this.options.log.warn(text);
      this.mcp.server.sendLoggingMessage({ level: "warning", logger: "spool", data: text }).catch(() => undefined);
    },
  };

  constructor(private readonly options: McpBridgeOptions) {
    this.mcp = new McpServer(
      { name: "spool", title: "Spool", version: options.version },
      {
        // Tasks (2025-11-25): run_command may run as one, and each task is a Spool producer (src/mcp/tasks.ts).
        capabilities: { tools: {}, logging: {}, tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } },
        taskStore: new SpoolTaskStore({
          session: () => this.#ready(),
          taskRuns: () => this.#taskRuns(),
          report: async (run, path, by) => this.#report(await this.#ready(), run, path, by),
        }),
        instructions:
          "Spool runs your shell commands after a person approves them (web view, spool approve, an editor). run_command waits for the decision and for the command; use background: true for servers and watchers, then read_output, send_input, signal and cancel by path.",
      },
    );
    this.#registerTools();
    this.#registerTaskCalls();
    this.#registerResources();
    this.mcp.server.oninitialized = () => {
      // Requests to the client are numbered from 0, and clients that test the id for truth (the SDK's own among them)
      // ignore notifications/cancelled for request 0: a ping takes that number, so a withdrawn elicitation never has it.
      this.mcp.server.ping().catch(() => undefined);
      void this.#ready().catch((error: unknown) => this.#log.warn(`spool mcp: ${message(error)}`));
    };
  }

  /** Serves one MCP connection over `transport`; resolves when it closes. */
  async serve(transport: Transport): Promise<void> {
    await (await this.connect(transport)).closed;
  }

  /** Connects the MCP server to `transport` (stdio, or one Streamable HTTP session); `closed` resolves when it closes. */
  async connect(transport: Transport): Promise<{ closed: Promise<void> }> {
    const closed = new Promise<void>((resolve) => {
      const previous = transport.onclose;
      transport.onclose = () => {
        this.#closing = true;
        previous?.();
        resolve();
      };
    });
    await this.mcp.connect(transport);
    const onerror = transport.onerror;
    transport.onerror = (error) => {
      this.#log.warn(`spool mcp: ${message(error)}`);
      onerror?.(error);
    };
    return { closed };
  }

  /** After the MCP connection closed: rejects the proposals still waiting, stops following, closes the Spool connection. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const [uri, sub] of this.#subscriptions) {
      this.#subscriptions.delete(uri);
      if (sub.timer) clearTimeout(sub.timer);
      await (await sub.watch)?.close().catch(() => undefined);
    }
    const session = await this.#session?.catch(() => null);
    // The calls the close aborted reject their proposals and cancel their commands: let them reach the server.
    await new Promise((resolve) => setImmediate(resolve));
    // Within reason: with the server unreachable, a cancel cannot be confirmed (the server's grace period ends it).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.#inFlight]), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    session?.client.close();
  }

  readonly #inFlight = new Set<Promise<unknown>>();

  // ---- the Spool side ------------------------------------------------------------------------------

  /** The Spool side, opened once; a failure (no server, a bad token) is reported to the call and tried again at the next. */
  #ready(): Promise<Session> {
    if (!this.#session) {
      const opening = this.#open();
      this.#session = opening;
      opening.catch(() => {
        if (this.#session === opening) this.#session = null;
      });
    }
    return this.#session;
  }

  async #open(): Promise<Session> {
    const info = this.mcp.server.getClientVersion();
    const who = info?.name || "MCP client";
    const { url, token } = await this.options.server();
    const project = this.options.project;
    const client = await SpoolClient.open(url, {
      token,
      reconnect: {
        ...(project.name ? { project: project.name } : {}),
        ...(project.root ? { root: project.root } : {}),
        client: { name: `${who} (${this.options.via ?? "spool mcp"})`, version: info?.version ?? "unknown" },
        role: this.options.role ?? "agent",
      },
    });
    const session: Session = { client, run: null, creating: null, who };
    client.on("run/resolved", (p: Resolved) => {
      if (p.run !== session.run) return;
      const waiter = this.#waiters.get(p.path);
      if (waiter) waiter(p);
      else {
        this.#early.set(p.path, p);
        if (this.#early.size > MAX_EARLY) this.#early.delete(this.#early.keys().next().value!);
      }
      if (p.decision === "accept") this.mcp.server.sendResourceListChanged().catch(() => undefined);
    });
    // Decisions made while the connection was down are read from the log entries.
    client.onReconnect(() => {
      for (const path of this.#waiters.keys()) void this.#decidedAlready(session, path).then((n) => n && this.#waiters.get(path)?.(n));
    });
    return session;
  }

  /** This connection's run, created the first time a command needs it (titled with the MCP client's name). */
  #runOf(session: Session): Promise<string> {
    session.creating ??= session.client.call("run/create", { title: session.who, mode: this.options.mode }).then((created) => {
      session.run = created.run.alias;
      this.#log.info(`spool mcp: ${session.who} works in run ${session.run}`);
      return session.run;
    });
    session.creating.catch(() => (session.creating = null));
    return session.creating;
  }

  /** The run a path without a spool:// URI means: this connection's, once it ran a command. */
  #ownRun(session: Session, given: string): string {
    if (session.run === null)
      throw new ToolFailure(`no command "${given}": this connection has run no command yet (another run's command is reached by its spool://RUN/PATH URI)`);
    return session.run;
  }

  /** The decision recorded in a proposal's log entry, or null while it waits. */
  async #decidedAlready(session: Session, path: string): Promise<Resolved | null> {
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
  async #target(session: Session, given: string): Promise<{ run: string; path: string; log: LogEntry }> {
    const parsed = parseResourceUri(given);
    const run = parsed?.run ?? this.#ownRun(session, given);
    const path = parsed?.path ?? given;
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

  /** A producer's output channels (stdout 1, stderr 2, …), from its log entry's typed producer. */
  #channels(log: LogEntry): { channel: number; path: string }[] {
    return producerOf(log)
      .channels.filter((c) => c.channel > 0)
      .map((c) => ({ channel: c.channel, path: c.path }));
  }

  // ---- tools ---------------------------------------------------------------------------------------

  #registerTools(): void {
    const tool = <A extends z.ZodRawShape>(
      name: keyof typeof TOOL_DESCRIPTIONS,
      title: string,
      inputSchema: A,
      annotations: { readOnlyHint: boolean; destructiveHint?: boolean; idempotentHint?: boolean; openWorldHint?: boolean },
      run: (args: z.infer<z.ZodObject<A>>, extra: Extra, session: Session) => Promise<CallToolResult>,
    ) => {
      this.mcp.registerTool(name, { title, description: TOOL_DESCRIPTIONS[name], inputSchema, annotations: { title, ...annotations } }, (async (
        args: z.infer<z.ZodObject<A>>,
        extra: Extra,
      ) => {
        const work = (async () => {
          try {
            return await run(args, extra, await this.#ready());
          } catch (error) {
            if (error instanceof ToolFailure) return failure(error.message);
            if (error instanceof SpoolRpcError) return failure(`Spool refused it: ${error.message}`);
            if (error instanceof ConnectionClosedError) return failure(`The connection to the Spool server closed: ${error.message}`);
            throw error;
          }
        })();
        this.#inFlight.add(work);
        void work.finally(() => this.#inFlight.delete(work)).catch(() => undefined);
        return work;
      }) as never);
    };
    tool(
      "run_command",
      "Run a shell command (after a person approves it)",
      RunCommandArgs,
      { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
      (a, e, s) => this.#runCommand(a, e, s),
    );
    tool("read_output", "Read a command's output", ReadOutputArgs, { readOnlyHint: true, openWorldHint: false }, (a, _e, s) => this.#readOutput(a, s));
    tool(
      "send_input",
      "Type into a running command",
      SendInputArgs,
      { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
      (a, _e, s) => this.#sendInput(a, s),
    );
    tool(
      "signal",
      "Signal a running command",
      SignalArgs,
      { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
      (a, _e, s) => this.#signal(a, s),
    );
    tool("cancel", "Cancel a command", CancelArgs, { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false }, (a, _e, s) =>
      this.#cancel(a, s),
    );
    tool("list_commands", "List this connection's commands", ListCommandsArgs, { readOnlyHint: true, openWorldHint: false }, (a, _e, s) => this.#list(a, s));
  }

  /** Proposes a run_command's command in this connection's run: its run and log path, or the refusal as a tool error. */
  async #propose(
    args: z.infer<z.ZodObject<typeof RunCommandArgs>>,
    session: Session,
    call: TraceCarrier,
    transport?: TraceCarrier,
  ): Promise<{ run: string; path: string } | CallToolResult> {
    const run = await this.#runOf(session);
    const tty = args.tty === true ? DEFAULT_TTY : args.tty === false || args.tty === undefined ? undefined : args.tty;
    try {
      const { path } = await session.client.call("proposal/create", {
        run,
        tool: this.options.mode === "ask" ? "env" : "sh",
        command: args.command,
        ...(args.cwd !== undefined ? { cwd: args.cwd } : {}),
        ...(args.env !== undefined ? { env: args.env } : {}),
        ...(args.timeout_ms !== undefined ? { timeout_ms: args.timeout_ms } : {}),
        ...(tty ? { tty } : {}),
        ...(args.background ? { background: true } : {}),
        ...((args.runner ?? this.options.runner) ? { runner: args.runner ?? this.options.runner } : {}),
        ...traceparentOf(call, transport),
      });
      return { run, path };
    } catch (error) {
      if (error instanceof SpoolRpcError) return failure(`Spool refused the command: ${error.message}`);
      throw error;
    }
  }

  async #runCommand(args: z.infer<z.ZodObject<typeof RunCommandArgs>>, extra: Extra, session: Session): Promise<CallToolResult> {
    const progress = new Progress(extra);
    const proposed = await this.#propose(args, session, extra, extra);
    if ("content" in proposed) return proposed;
    const { run, path } = proposed;
    const decision = await this.#decision(session, path, extra, progress);
    const uri = resourceUri(run, path);
    if (decision === null) return failure(`Cancelled before a decision; the proposal ${path} was withdrawn. The command did not run.`);
    if (decision.decision === "reject") {
      return failure(
        `Rejected by ${decision.resolvedBy}${decision.reason ? `: ${decision.reason}` : ""}. The command did not run.\n$ ${args.command}\n(${path})`,
      );
    }
    const by = `accepted by ${decision.resolvedBy}${decision.runner ? `, runs on ${decision.runner}` : ""}`;
    if (args.background) {
      progress.say(`${by}; running in the background`);
      return text(
        `Started in the background (${by}).\npath: ${path}\nresource: ${uri}\nread_output, send_input, signal and cancel reach it by this path; list_commands shows whether it still runs.`,
      );
    }
    progress.say(`${by}; running`);
    // One decoder per channel: a character split between two chunks of one channel is decoded whole.
    const decoders = new Map<number, TextDecoder>();
    let watch: StreamWatch | null = null;
    const onAbort = () => {
      if (this.#closing) return void this.#stop(session, path, `the MCP client ${session.who} closed the connection`);
      void this.#stop(session, path, `cancelled by ${session.who} (MCP notifications/cancelled)`);
    };
    extra.signal.addEventListener("abort", onAbort, { once: true });
    const heartbeat = setInterval(() => progress.say("still running"), HEARTBEAT_MS);
    try {
      watch = await session.client.watch({ run, path }, (chunk) => {
        if (chunk.channel <= 0) return;
        let decoder = decoders.get(chunk.channel);
        if (!decoder) decoders.set(chunk.channel, (decoder = new TextDecoder()));
        progress.output(decoder.decode(chunk.data, { stream: true }));
      });
      if (extra.signal.aborted) onAbort();
      await watch.ended;
    } finally {
      clearInterval(heartbeat);
      extra.signal.removeEventListener("abort", onAbort);
      await watch?.close().catch(() => undefined);
    }
    progress.flush();
    return this.#report(session, run, path, by);
  }

  // ---- tasks ---------------------------------------------------------------------------------------

  /**
   * run_command as a task (tools/call with `task`): the proposal is made and the call answers at once with the
   * task, which is that producer (src/mcp/tasks.ts): it waits for a person, runs and ends in Spool whether or not
   * this client stays. McpServer sends every task-augmented call to a registerToolTask handler, and would then
   * poll for plain calls too (no progress, no cancel-by-notification); so tools/call and tools/list are wrapped
   * here instead: a plain run_command stays the call it was, and tools/list says it may run as a task.
   */
  #registerTaskCalls(): void {
    const server = this.mcp.server;
    // The handlers McpServer registered, from the map the SDK keeps them in (not a public API: package-lock.json fixes
    // the SDK's version, and the error below and test/mcp/http.test.ts's tools/list test say when an update moves it).
    const handlers = (server as unknown as { _requestHandlers: Map<string, (request: unknown, extra: unknown) => Promise<unknown>> })._requestHandlers;
    const call = handlers.get("tools/call");
    const list = handlers.get("tools/list");
    if (!call || !list) throw new Error("spool mcp: the MCP SDK registered no tools handlers (an SDK change: see src/mcp/bridge.ts)");
    server.setRequestHandler(ListToolsRequestSchema, async (request, extra) => {
      const listed = (await list(request, extra)) as { tools: { name: string; execution?: object }[] };
      for (const tool of listed.tools) if (tool.name === "run_command") tool.execution = { taskSupport: "optional" };
      return listed as never;
    });
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      if (request.params.name !== "run_command" || !request.params.task) return (await call(request, extra)) as never;
      const args = z
        .object(RunCommandArgs)
        .strict()
        .safeParse(request.params.arguments ?? {});
      if (!args.success)
        throw new McpError(
          ErrorCode.InvalidParams,
          `run_command: ${args.error.issues.map((i) => `${i.path.join(".") || "arguments"}: ${i.message}`).join("; ")}`,
        );
      if (!extra.taskStore) throw new McpError(ErrorCode.InternalError, "no task store");
      const session = await this.#ready();
      const proposed = await this.#propose(args.data, session, request.params, extra);
      // Refused before anything was proposed: there is no task, the refusal is the error.
      if ("content" in proposed) throw new McpError(ErrorCode.InvalidParams, proposed.content.map((c) => (c.type === "text" ? c.text : "")).join("\n"));
      const task = await extra.taskStore.createTask({ ttl: null, pollInterval: TASK_POLL_MS, context: proposed });
      return { task } as never;
    });
  }

  /** The runs tasks/list shows: this client's (by its name, as its runs are titled) in the project, and this session's. */
  async #taskRuns(): Promise<{ alias: string; createdAt: number; updatedAt: number }[]> {
    const session = await this.#ready();
    const { runs } = await session.client.call("run/list", { limit: 100 });
    return runs.filter((r) => r.alias === session.run || r.title === session.who);
  }

  /**
   * Waits for the decision on a proposal (from any client, a rule, or this client's elicitation), telling the
   * MCP client what it waits for. Null when the call was cancelled first (the proposal is then rejected).
   */
  async #decision(session: Session, path: string, extra: Extra, progress: Progress): Promise<Resolved | null> {
    let settle!: (notice: Resolved | null) => void;
    const decided = new Promise<Resolved | null>((resolve) => (settle = resolve));
    const early = this.#early.get(path);
    this.#early.delete(path);
    if (early) return early;
    this.#waiters.set(path, (notice) => settle(notice));
    const asked = new AbortController();
    const onAbort = () => {
      const why = this.#closing ? `the MCP client ${session.who} closed the connection` : `cancelled by ${session.who} (MCP notifications/cancelled)`;
      void session.client
        .call("run/resolve", { run: session.run!, path, decision: "reject", reason: why })
        .catch((error: unknown) => {
          if (!(error instanceof SpoolRpcError && error.errorCode === "CONFLICT")) this.#log.warn(`withdrawing ${path}: ${message(error)}`);
        })
        .finally(() => settle(null));
    };
    extra.signal.addEventListener("abort", onAbort, { once: true });
    let heartbeat: NodeJS.Timeout | null = null;
    try {
      // A rule may have accepted it before the reply, or the decision came before this waiter.
      const already = await this.#decidedAlready(session, path);
      if (already) return already;
      if (extra.signal.aborted) onAbort();
      const log = await session.client.call("entry/get", { run: session.run!, path, limit: 1 });
      const facts = producerOf(log);
      const runners = facts.runner === null ? await session.client.call("runner/list", {}).catch(() => null) : null;
      const shown = factsText(facts, { defaultRunner: runners ? defaultRunnerName(runners.runners) : null });
      progress.say(`waiting for a decision on ${path} (Spool web view, spool approve, or an editor)`);
      heartbeat = setInterval(() => progress.say(`still waiting for a decision on ${path}`), HEARTBEAT_MS);
      // Elicitation decides: only a person's credential may (an agent's never accepts).
      if (this.options.role === "person" && this.mcp.server.getClientCapabilities()?.elicitation?.form) this.#elicit(session, path, shown, asked.signal);
      const d = await decided;
      return d;
    } finally {
      if (heartbeat) clearInterval(heartbeat);
      asked.abort(new Error("decided"));
      extra.signal.removeEventListener("abort", onAbort);
      this.#waiters.delete(path);
    }
  }

  /** Asks the MCP client's user (`elicitation/create`); withdrawn (notifications/cancelled) once anyone decides. */
  #elicit(session: Session, path: string, shown: string, signal: AbortSignal): void {
    this.mcp.server
      .elicitInput(
        {
          mode: "form",
          message: `Spool: run this command? (run ${session.run!}, ${path})\n\n${shown}\n\nAny Spool client can decide it too; the first decision counts.`,
          requestedSchema: {
            type: "object",
            properties: {
              decision: {
                type: "string",
                title: "Decision",
                enum: ["accept", "reject"],
                enumNames: ["Accept: run it", "Reject: do not run it"],
              },
              reason: { type: "string", title: "Reason (recorded with a rejection)" },
            },
            required: ["decision"],
          },
        },
        { signal, timeout: ELICITATION_TIMEOUT_MS },
      )
      .then(async (answer) => {
        if (signal.aborted) return;
        // Dismissed without a choice: the proposal waits for another client.
        if (answer.action === "cancel") return;
        const accept = answer.action === "accept" && answer.content?.decision === "accept";
        const reason = typeof answer.content?.reason === "string" && answer.content.reason ? answer.content.reason : undefined;
        await session.client
          .call(
            "run/resolve",
            accept
              ? { run: session.run!, path, decision: "accept", ...(reason ? { reason } : {}) }
              : { run: session.run!, path, decision: "reject", reason: reason ?? `declined in ${session.who}` },
          )
          .catch((error: unknown) => {
            if (!(error instanceof SpoolRpcError && error.errorCode === "CONFLICT")) this.#log.warn(`deciding ${path}: ${message(error)}`);
          });
      })
      .catch((error: unknown) => {
        if (!signal.aborted) this.#log.warn(`elicitation for ${path} failed: ${message(error)}`);
      });
  }

  /** Cancels a running producer (stream/cancel); one that already ended stays as it ended. */
  async #stop(session: Session, path: string, reason: string): Promise<void> {
    await session.client.call("stream/cancel", { run: session.run!, path, reason }).catch((error: unknown) => {
      this.#log.warn(`cancelling ${path}: ${message(error)}`);
    });
  }

  /** The result of a finished (or still running) command: how it ended and each channel as the model sees it. */
  async #report(session: Session, run: string, path: string, by: string | null): Promise<CallToolResult> {
    const log = await session.client.call("entry/get", { run, path, limit: 1 });
    const p = producerOf(log);
    const channels = this.#channels(log);
    const views: string[] = [];
    let state = STATUS.streaming as number;
    // The budget is shared among the channels that hold something (as the agent's own tools share theirs).
    const sizes = await Promise.all(channels.map((c) => session.client.call("entry/get", { run, path: c.path, tail: 1 })));
    const share = Math.max(200, Math.floor(OUTPUT_BUDGET_TOKENS / Math.max(1, sizes.filter((e) => e.bytes > 0).length)));
    for (const c of channels) {
      const view = await session.client.call("entry/get", { run, path: c.path, view: "model", budget: share });
      state = view.status;
      const name = c.channel === 1 ? (p.tty ? "output" : "stdout") : c.channel === 2 ? "stderr" : `channel ${c.channel}`;
      if (view.body.trim() === "" && c.channel !== 1) continue;
      // The note on what was left out names the model's get tool; here the same arguments go to read_output.
      const body = view.body.replaceAll("read them with the get tool: ", "read them with read_output: ");
      views.push(`--- ${name} (${c.path}, ${view.lines} lines) ---\n${body.trimEnd() || "(empty)"}`);
    }
    const outcome = p.endStatus ?? state;
    const facts: string[] = [];
    if (p.outcome === "completed") {
      facts.push(p.signal ? `killed by ${p.signal}` : `exit ${p.exitCode === null ? "unknown" : String(p.exitCode)}`);
    } else if (p.outcome === "cancelled" || p.outcome === "aborted") {
      facts.push(`${p.outcome}${p.reason ? `: ${p.reason}` : ""}`);
    } else facts.push(statusWord(outcome));
    if (p.durationMs !== null) facts.push(`${p.durationMs} ms`);
    if (by) facts.push(by);
    const header = [
      `$ ${escapeControl(p.command)}`,
      facts.join(" · "),
      `exit_code: ${JSON.stringify(p.exitCode)}`,
      `signal: ${JSON.stringify(p.signal)}`,
      `duration_ms: ${p.durationMs ?? "null"}`,
      `status: ${statusWord(outcome)}`,
      `path: ${path}`,
    ].join("\n");
    const result = text(`${header}\n${views.join("\n")}`);
    if (p.outcome === "cancelled" || p.outcome === "aborted") result.isError = true;
    return result;
  }

  async #readOutput(args: z.infer<z.ZodObject<typeof ReadOutputArgs>>, session: Session): Promise<CallToolResult> {
    const parsed = parseResourceUri(args.path);
    const run = parsed?.run ?? this.#ownRun(session, args.path);
    const path = parsed?.path ?? args.path;
    if (args.offset !== undefined && (args.line === undefined || args.limit !== undefined))
      throw new ToolFailure("offset goes with line, and reads the rest of that one line: give line and no limit");
    // Paths this result names, as read_output takes them back: another run's as spool://RUN/PATH.
    const address = (p: string) => (parsed ? resourceUri(run, p) : p);
    const slice = {
      ...(args.tail !== undefined ? { tail: args.tail } : {}),
      ...(args.line !== undefined ? { line: args.line } : {}),
      ...(args.limit !== undefined ? { limit: args.limit } : {}),
      ...(args.offset !== undefined ? { offset: args.offset } : {}),
      view: args.view ?? "model",
      // All of it as the model sees it: within a budget (head, tail, failure lines, a note on the rest).
      ...(args.view !== "raw" && args.tail === undefined && args.line === undefined && args.limit === undefined ? { budget: OUTPUT_BUDGET_TOKENS } : {}),
    } as const;
    if (!path.startsWith("log://")) {
      const entry = await this.#get(session, run, path, slice);
      return text(`${address(path)} (${statusWord(entry.status)}, ${linesRead(entry)})\n${entry.body}`);
    }
    const { log } = await this.#target(session, args.path);
    if (log.status === STATUS.proposed || log.status === STATUS.rejected) {
      return text(`${path}: ${statusWord(log.status)}; it has no output\n$ ${escapeControl(producerOf(log).command)}`);
    }
    const p = producerOf(log);
    const parts: string[] = [`$ ${escapeControl(p.command)}`];
    for (const c of this.#channels(log)) {
      const entry = await this.#get(session, run, c.path, slice);
      if (entry.lines === 0 && c.channel !== 1) continue;
      parts.push(`--- ${address(c.path)} (${statusWord(entry.status)}, ${linesRead(entry)}) ---\n${entry.body.trimEnd()}`);
    }
    if (p.endStatus !== null) parts.push(`ended: ${statusWord(p.endStatus)}${p.exitCode !== null ? `, exit ${p.exitCode}` : ""}`);
    return text(parts.join("\n"));
  }

  async #get(
    session: Session,
    run: string,
    path: string,
    slice: { tail?: number; line?: number; limit?: number; offset?: number; view: "model" | "raw"; budget?: number },
  ): Promise<LogEntry> {
    try {
      return await session.client.call("entry/get", { run, path, ...slice });
    } catch (error) {
      if (error instanceof SpoolRpcError && error.errorCode === "NOT_FOUND") throw new ToolFailure(`no entry "${path}" in run ${run}`);
      throw error;
    }
  }

  async #sendInput(args: z.infer<z.ZodObject<typeof SendInputArgs>>, session: Session): Promise<CallToolResult> {
    if (args.text === undefined && (args.keys ?? []).length === 0 && !args.eof) throw new ToolFailure("send_input needs text, keys or eof");
    let bytes = args.text ?? "";
    for (const key of args.keys ?? []) {
      const b = keyBytes(key);
      if (b === null) throw new ToolFailure(`unknown key "${key}"; keys are ${KEY_NAMES}`);
      bytes += b;
    }
    const { run, path } = await this.#target(session, args.path);
    const done: string[] = [];
    if (bytes !== "") {
      const sent = await session.client.input(run, path, bytes);
      done.push(`sent ${Buffer.byteLength(bytes)} bytes (input #${sent.seq})`);
    }
    if (args.eof) {
      await session.client.eof(run, path);
      done.push("ended its input");
    }
    return text(`${done.join("; ")} to ${path}; read_output shows what it printed`);
  }

  async #signal(args: z.infer<z.ZodObject<typeof SignalArgs>>, session: Session): Promise<CallToolResult> {
    const { run, path } = await this.#target(session, args.path);
    await session.client.signal(run, path, args.signal);
    return text(`sent SIG${args.signal} to ${path}; list_commands or read_output show whether it ended`);
  }

  async #cancel(args: z.infer<z.ZodObject<typeof CancelArgs>>, session: Session): Promise<CallToolResult> {
    const { run, path, log } = await this.#target(session, args.path);
    const reason = args.reason ?? `cancelled by ${session.who}`;
    if (log.status === STATUS.proposed) {
      await session.client.call("run/resolve", { run, path, decision: "reject", reason });
      return text(`withdrew the proposal ${path}; it will not run`);
    }
    if (log.status === STATUS.rejected) return text(`${path} was rejected; nothing runs`);
    const reply = await session.client.call("stream/cancel", { run, path, reason });
    return text(reply.changed ? `cancelled ${path}; its process is being killed` : `${path} had already ended (${statusWord(reply.status)})`);
  }

  async #list(args: z.infer<z.ZodObject<typeof ListCommandsArgs>>, session: Session): Promise<CallToolResult> {
    if (session.run === null) return text("this connection has run no command yet");
    const { entries } = await session.client.call("entry/list", { run: session.run, pattern: "log://*", limit: LIST_LIMIT });
    const rows: string[] = [];
    for (const e of entries) {
      const p = producerOf(e);
      const state =
        e.status === STATUS.proposed
          ? "pending"
          : e.status === STATUS.rejected
            ? "rejected"
            : p.endStatus !== null
              ? p.endStatus === STATUS.done
                ? "done"
                : statusWord(p.endStatus)
              : "running";
      const group = state === "pending" ? "pending" : state === "running" ? "running" : "finished";
      if (args.state && args.state !== "all" && args.state !== group) continue;
      const exit = p.exitCode !== null ? ` exit ${p.exitCode}` : "";
      rows.push(`${e.path}  ${state}${exit}  $ ${escapeControl(p.command)}`);
    }
    // The run's state in the words every client shows (runState): waiting while a command of it waits for a decision.
    const { run } = await session.client.call("run/get", { run: session.run });
    const head = `run ${session.run} (${runState(run)})`;
    return text(rows.length ? `${head}:\n${rows.join("\n")}` : `${head}: no commands${args.state && args.state !== "all" ? ` (${args.state})` : ""}`);
  }

  // ---- resources -----------------------------------------------------------------------------------

  #registerResources(): void {
    const server = this.mcp.server;
    server.registerCapabilities({ resources: { subscribe: true, listChanged: true } });
    server.setRequestHandler(ListResourcesRequestSchema, async (): Promise<ListResourcesResult> => {
      const session = await this.#ready();
      if (session.run === null) return { resources: [] };
      const run = session.run;
      const { entries } = await session.client.call("entry/list", { run, pattern: "log://*", status: STATUS.done, limit: LIST_LIMIT });
      return {
        resources: entries.map((e) => {
          const { command, endStatus } = producerOf(e);
          return {
            uri: resourceUri(run, e.path),
            name: e.path,
            title: `$ ${escapeControl(command)}`,
            description: `Output of a command of run ${run} (${endStatus !== null ? statusWord(endStatus) : "running"})`,
            mimeType: "text/plain",
          };
        }),
      };
    });
    server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
      resourceTemplates: [
        {
          uriTemplate: "spool://{run}/{path}",
          name: "command-output",
          title: "A command's output",
          description: "The output of the command at PATH (its log path, e.g. log://turn_1/sh/ls, or one channel's path) in run RUN of this project",
          mimeType: "text/plain",
        },
      ],
    }));
    server.setRequestHandler(ReadResourceRequestSchema, async (request) => {
      const session = await this.#ready();
      const parsed = parseResourceUri(request.params.uri);
      if (!parsed) throw new McpError(ErrorCode.InvalidParams, `not a Spool resource: ${request.params.uri} (spool://RUN/PATH)`);
      try {
        const result = parsed.path.startsWith("log://")
          ? await this.#report(session, parsed.run, parsed.path, null)
          : await this.#readOutput({ path: request.params.uri }, session);
        const body = result.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
        return { contents: [{ uri: request.params.uri, mimeType: "text/plain", text: body }] };
      } catch (error) {
        if (error instanceof ToolFailure || (error instanceof SpoolRpcError && (error.errorCode === "NOT_FOUND" || error.errorCode === "INVALID_PARAMS")))
          throw new McpError(-32002, `Resource not found: ${request.params.uri}`, { uri: request.params.uri });
        throw error;
      }
    });
    server.setRequestHandler(SubscribeRequestSchema, async (request) => {
      const session = await this.#ready();
      const uri = request.params.uri;
      const parsed = parseResourceUri(uri);
      if (!parsed) throw new McpError(ErrorCode.InvalidParams, `not a Spool resource: ${uri} (spool://RUN/PATH)`);
      if (this.#subscriptions.has(uri)) return {};
      let target: { run: string; path: string };
      try {
        target = await this.#target(session, uri);
      } catch (error) {
        if (error instanceof ToolFailure) throw new McpError(-32002, `Resource not found: ${uri}`, { uri });
        throw error;
      }
      const sub = { watch: Promise.resolve<StreamWatch | null>(null), timer: null as NodeJS.Timeout | null };
      const updated = () => {
        if (sub.timer || this.#subscriptions.get(uri) !== sub) return;
        sub.timer = setTimeout(() => {
          sub.timer = null;
          if (this.#subscriptions.get(uri) === sub) server.sendResourceUpdated({ uri }).catch(() => undefined);
        }, THROTTLE_MS);
      };
      this.#subscriptions.set(uri, sub);
      sub.watch = session.client
        .watch({ run: target.run, path: target.path }, () => updated())
        .then((watch) => {
          // Its end is an update too (the status line changes), sent once its last output went out.
          void watch.ended.then(() => {
            if (this.#subscriptions.get(uri) !== sub) return;
            if (sub.timer) clearTimeout(sub.timer);
            sub.timer = null;
            server.sendResourceUpdated({ uri }).catch(() => undefined);
          });
          return watch;
        })
        .catch((error: unknown) => {
          this.#log.warn(`following ${uri}: ${message(error)}`);
          return null;
        });
      await sub.watch;
      return {};
    });
    server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
      const sub = this.#subscriptions.get(request.params.uri);
      if (sub) {
        this.#subscriptions.delete(request.params.uri);
        if (sub.timer) clearTimeout(sub.timer);
        await (await sub.watch)?.close().catch(() => undefined);
      }
      return {};
    });
  }
}

/** A tool call that cannot be done as asked: an error result (isError) with this message, not a protocol error. */
class ToolFailure extends Error {}
