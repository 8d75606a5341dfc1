import {
  RequestError,
  type RequestPermissionRequest,
  type RequestPermissionResponse,
  type SessionConfigOption,
  type SessionModeState,
  type SessionUpdate,
  type StopReason,
  type ToolCallContent,
  type ToolCallStatus,
  type ToolKind,
} from "@agentclientprotocol/sdk";
import { ConnectionClosedError, type SpoolClient, SpoolRpcError } from "../client/spool-client.js";
import type { Logger } from "../logger.js";
import type { ResultOf } from "../protocol/methods/index.js";
import type { SpoolNotifications } from "../protocol/notifications.js";
import { defaultRunnerName, factsText, type ProposalFacts } from "../protocol/proposal-facts.js";
import { ENTRY, OPEN_RUN, RUN } from "../protocol/status.js";
import { type Producer, type ProposalView, producerOf, proposalView } from "../protocol/views.js";
import { fenced, isCommandTool, tail, toolLook } from "./content.js";
import { CommandOutput, endingOf, finalChange, type ToolChange } from "./output.js";

/** What a session needs of the editor: its name, whether it shows terminals, and the two calls it makes. */
export interface Editor {
  readonly name: string;
  readonly terminal: boolean;
  update(sessionId: string, update: SessionUpdate): Promise<void>;
  requestPermission(params: RequestPermissionRequest, signal: AbortSignal): Promise<RequestPermissionResponse>;
}

export interface Model {
  alias: string;
  provider: string;
  model: string;
}

/** One connection of the bridge to the Spool server, joined to one project. */
export interface ProjectLink {
  client: SpoolClient;
  name: string;
  root: string;
  /** Resolves once the connection is back after a drop (false when it did not come back in time). */
  reconnected(timeoutMs: number): Promise<boolean>;
}

type Mode = "ask" | "act";

interface ToolView {
  id: string;
  tool: string;
  title: string;
  kind: ToolKind;
  rawInput: Record<string, unknown>;
  /** The producer's log entry (sh, env). */
  path: string | null;
  /** What the person must see before deciding, once it was proposed. */
  facts: ProposalFacts | null;
  /** Its proposal was decided (accepted, rejected, or it ran before the bridge saw it). */
  resolved: boolean;
  /** The editor was shown its final status. */
  settled: boolean;
  /** The producer's status a replayed history reported. */
  known: number | null;
  permission: AbortController | null;
  /** The editor answered; its decision is on its way to the server. */
  deciding: boolean;
  output: CommandOutput | null;
  /** The prompt turn it was first seen in (0: before any, e.g. replayed by a load). */
  turn: number;
}

interface Turn {
  loop: number | null;
  finish(outcome: { stop: StopReason } | { error: string }): void;
  /** Resolves once the prompt has been answered (or has failed). */
  answered: Promise<void>;
}

type HistoryMessage = ResultOf<"run/history">["messages"][number];

/** Updates waiting for the editor; past it, new ones are dropped (with one warning) rather than held without bound. */
const MAX_QUEUED = 10_000;
/** Tool calls remembered per session; the oldest finished ones are forgotten past it. */
const MAX_TOOLS = 500;
/** Loop endings remembered until a prompt claims them. */
const MAX_ENDINGS = 64;
/** Messages a `session/load` replays at most. */
const MAX_REPLAY = 20_000;
/** An editor's answer given while the server connection is down is sent this many times at most… */
const RESOLVE_ATTEMPTS = 5;
/** …each after waiting this long at most for the connection to come back. */
const RECONNECT_WAIT_MS = 60_000;
/** How long a turn waits for its commands' final updates before it answers. */
const SETTLE_MS = 3_000;
/** How long a cancelled turn waits for its tool calls' final updates before it ends them itself and answers. */
const CANCEL_SETTLE_MS = 5_000;

const PERMISSION_OPTIONS: RequestPermissionRequest["options"] = [
  { optionId: "allow_once", name: "Allow", kind: "allow_once" },
  { optionId: "allow_always", name: "Always allow this command in this session", kind: "allow_always" },
  { optionId: "reject_once", name: "Reject", kind: "reject_once" },
];

const MODES: { id: Mode; name: string; description: string }[] = [
  { id: "act", name: "Act", description: "The model proposes shell commands; each runs once you allow it" },
  { id: "ask", name: "Ask", description: "Read-only commands only, in a sandbox" },
];

/** A Spool error as an ACP error the editor shows. */
export function acpError(error: unknown): RequestError {
  if (error instanceof RequestError) return error;
  if (error instanceof SpoolRpcError) {
    if (error.errorCode === "INVALID_PARAMS") return RequestError.invalidParams(error.data, error.message);
    return new RequestError(-32603, error.message, error.data);
  }
  if (error instanceof ConnectionClosedError) return new RequestError(-32603, `The connection to the Spool server closed: ${error.message}`);
  return new RequestError(-32603, error instanceof Error ? error.message : String(error));
}

const isDecided = (error: unknown) => error instanceof SpoolRpcError && (error.errorCode === "CONFLICT" || error.errorCode === "NOT_FOUND");

/**
 * An ACP session: one Spool run seen from an editor. Turns Spool's notifications about the run into
 * `session/update`s in the order they came (text, tool calls, permission requests, command output),
 * prompts the run and answers the prompt when its loop ends, and decides proposals with the editor's
 * answers. The run is the state; closing the session (or the editor) leaves it running.
 */
export class AcpSession {
  mode: Mode;
  model: string | null;
  readonly #tools = new Map<string, ToolView>();
  readonly #byPath = new Map<string, string>();
  readonly #endings = new Map<number, { stop: StopReason } | { error: string }>();
  readonly #queue: (() => Promise<void>)[] = [];
  #draining = false;
  #dropped = 0;
  /** The last queued task when it is a text chunk: more text joins it until it is sent. */
  #text: { text: string; sent: boolean } | null = null;
  /** The model's text in the current loop (any said) and in its latest reply, to tell whether a summary repeats it. */
  #loopText = { loop: -1, turn: -1, any: false, reply: "" };
  #turn: Turn | null = null;
  /** Prompt turns so far. */
  #turns = 0;
  /** The run's title as the editor was last told it. */
  #title: string | null = null;
  #closed = false;
  readonly #off: (() => void)[] = [];
  /** Called whenever a tool call settles. */
  readonly #settledWaiters = new Set<() => void>();

  constructor(
    readonly id: string,
    readonly link: ProjectLink,
    readonly run: string,
    private readonly editor: Editor,
    readonly models: Model[],
    init: { mode: Mode; model: string | null },
    private readonly log: Logger,
  ) {
    this.mode = init.mode;
    this.model = init.model;
    const on = <N extends keyof SpoolNotifications>(method: N, handle: (p: SpoolNotifications[N]) => void) =>
      this.#off.push(link.client.on(method, (p: SpoolNotifications[N]) => (p as { run?: string }).run === run && !this.#closed && handle(p)));
    on("run/progress", (p) => this.#onText(p.loop, p.turn, p.delta));
    on("run/tool", (p) => this.#enqueue(() => this.#onTool(p)));
    on("run/proposal", (p) => this.#enqueue(() => this.#onProposal(proposalView(p))));
    on("run/resolved", (p) => this.#enqueue(() => this.#onResolved(p)));
    on("run/state", (p) => this.#enqueue(() => this.#onState(p)));
  }

  // ---- what the editor sees: config --------------------------------------------------------------

  configOptions(): SessionConfigOption[] {
    return [
      {
        id: "mode",
        name: "Mode",
        category: "mode",
        type: "select",
        currentValue: this.mode,
        options: MODES.map((m) => ({ value: m.id, name: m.name, description: m.description })),
      },
      {
        id: "model",
        name: "Model",
        category: "model",
        type: "select",
        currentValue: this.model ?? "",
        options: this.models.map((m) => ({ value: m.alias, name: m.alias, description: `${m.provider}/${m.model}` })),
      },
    ];
  }

  modes(): SessionModeState {
    return { currentModeId: this.mode, availableModes: MODES.map((m) => ({ id: m.id, name: m.name, description: m.description })) };
  }

  setOption(configId: string, value: unknown): void {
    if (configId === "mode") {
      if (value !== "ask" && value !== "act") throw RequestError.invalidParams({ configId, value }, `mode is "ask" or "act"`);
      this.mode = value;
      return;
    }
    if (configId === "model") {
      if (typeof value !== "string" || !this.models.some((m) => m.alias === value)) {
        throw RequestError.invalidParams({ configId, value }, `unknown model; configured: ${this.models.map((m) => m.alias).join(", ") || "none"}`);
      }
      this.model = value;
      return;
    }
    throw RequestError.invalidParams({ configId }, `unknown option "${configId}"; Spool offers mode and model`);
  }

  // ---- prompt turns --------------------------------------------------------------------------------

  /** A prompt turn: the prompt becomes the run's next loop; answers when that loop ends (or is cancelled). */
  async prompt(text: string): Promise<StopReason> {
    if (this.#turn) throw RequestError.invalidRequest({ sessionId: this.id }, "a prompt turn is already running in this session");
    let finish!: Turn["finish"];
    const done = new Promise<{ stop: StopReason } | { error: string }>((resolve) => (finish = resolve));
    let answered!: () => void;
    const turn: Turn = { loop: null, finish, answered: new Promise<void>((resolve) => (answered = resolve)) };
    this.#turn = turn;
    this.#turns++;
    try {
      const reply = await this.link.client
        .call("run/prompt", { run: this.run, prompt: text, mode: this.mode, ...(this.model ? { model: this.model } : {}) })
        .catch((error: unknown) => {
          throw acpError(error);
        });
      turn.loop = reply.loop;
      if (reply.run.title && reply.run.title !== this.#title) {
        const title = reply.run.title;
        this.#title = title;
        this.#enqueue(() => this.#send({ sessionUpdate: "session_info_update", title, updatedAt: new Date(reply.run.updatedAt).toISOString() }));
      }
      const ended = this.#endings.get(reply.loop);
      if (ended) turn.finish(ended);
      else if (reply.run.status === RUN.aborted) turn.finish({ stop: "cancelled" });
      const outcome = await done;
      // ACP: every update of the cancelled tool calls goes out before the turn is answered "cancelled".
      if ("stop" in outcome && outcome.stop === "cancelled") await this.#settleCancelled();
      await this.#quiesce();
      if ("error" in outcome) throw new RequestError(-32603, `The run's loop ${reply.loop} failed: ${outcome.error}`, { run: this.run, loop: reply.loop });
      return outcome.stop;
    } finally {
      if (this.#turn === turn) this.#turn = null;
      answered();
    }
  }

  /** `session/cancel`: aborts the run's loop (Spool rejects its proposals and cancels its commands); the turn answers "cancelled". */
  async cancel(): Promise<void> {
    for (const view of this.#tools.values()) this.#withdraw(view);
    const turn = this.#turn;
    if (!turn) return;
    await this.#abort(`cancelled in ${this.editor.name}`);
    // After the run's own events (its abort, or the loop's ending when it ended first); the turn then waits for its tool calls.
    this.#enqueue(async () => turn.finish({ stop: "cancelled" }));
  }

  /** `run/abort`: rejects the run's proposals and cancels its commands; a run that is not running any more is left as it is. */
  async #abort(reason: string): Promise<void> {
    try {
      await this.link.client.call("run/abort", { run: this.run, reason });
    } catch (error) {
      // Not running any more: the loop ended meanwhile, and its ending answers the turn.
      if (!(error instanceof SpoolRpcError && error.errorCode === "CONFLICT")) this.log.warn(`run/abort of ${this.run} failed: ${String(error)}`);
    }
  }

  /**
   * A cancelled turn: tools without a producer get no answer after an abort, so they end here; commands end
   * when Spool reports their producers rejected or cancelled. One not seen ending in time is ended here and
   * no longer followed, so nothing of this turn reaches the editor after its answer.
   */
  async #settleCancelled(): Promise<void> {
    if (this.#closed) return;
    this.#enqueue(async () => {
      for (const view of this.#tools.values()) if (this.#live(view) && !isCommandTool(view.tool)) await this.#settle(view, "failed", "cancelled");
    });
    await this.#untilSettled(CANCEL_SETTLE_MS);
    this.#enqueue(async () => {
      for (const view of this.#tools.values()) {
        if (!this.#live(view)) continue;
        this.#withdraw(view);
        const output = view.output;
        view.output = null;
        await output?.close();
        await this.#settle(
          view,
          "failed",
          `cancelled; its end was not seen within ${CANCEL_SETTLE_MS / 1000} s${view.path ? ` (Spool's entry ${view.path} records it)` : ""}`,
        );
      }
    });
  }

  /**
   * A tool call whose end the editor is still to be shown: of this turn, or followed, or waiting on a
   * decision. (One replayed by a load that Spool will say nothing more about is left as it was shown.)
   */
  #live(view: ToolView): boolean {
    if (view.settled) return false;
    return view.turn === this.#turns || view.output !== null || view.permission !== null || view.deciding || (view.path !== null && !view.resolved);
  }

  /** Waits (at most `ms`) until every live tool call has settled. */
  async #untilSettled(ms: number): Promise<void> {
    const open = () => [...this.#tools.values()].some((v) => this.#live(v));
    if (!open()) return;
    let timer: NodeJS.Timeout | undefined;
    let wake!: () => void;
    const changed = () => {
      if (!open() || this.#closed) wake();
    };
    await new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
      this.#settledWaiters.add(changed);
    });
    clearTimeout(timer);
    this.#settledWaiters.delete(changed);
  }

  /** Waits (within reason) until every command being followed is `settled` (all) or `quiet` (those that ended). */
  async #settled(how: "settled" | "quiet"): Promise<void> {
    const outputs = [...this.#tools.values()].flatMap((v) => (v.output ? [v.output] : []));
    if (outputs.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(outputs.map((o) => (how === "settled" ? o.settled : o.quiet()))),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, SETTLE_MS))),
    ]);
    clearTimeout(timer);
  }

  /** Before a turn is answered: commands that ended have sent their last updates, and every queued update is out. */
  async #quiesce(): Promise<void> {
    await this.#settled("quiet");
    if (this.#closed) return;
    await new Promise<void>((resolve) => {
      if (this.#queue.length >= MAX_QUEUED) return resolve();
      this.#enqueue(async () => resolve());
    });
  }

  // ---- opening: history and what is under way ----------------------------------------------------

  /** `session/load`: the run's conversation as updates (prompts, text, tool calls with their results), before anything live. */
  replay(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#enqueue(async () => {
        try {
          let after = 0;
          let count = 0;
          for (;;) {
            const page = await this.link.client.call("run/history", { run: this.run, after, limit: 200 });
            for (const message of page.messages) await this.#replayMessage(message);
            count += page.messages.length;
            if (page.next === null || count >= MAX_REPLAY) break;
            after = page.next;
          }
          resolve();
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  /** Asks the editor about the run's pending proposals and follows its running commands (after load or resume). */
  catchUp(): void {
    this.#enqueue(async () => {
      const pending = await this.link.client.call("entry/list", { run: this.run, pattern: "log://*", status: ENTRY.proposed });
      for (const log of pending.entries) await this.#onProposal(proposalView({ ...log, run: this.run, producer: producerOf(log) }));
      // An accepted producer's log entry records its final status when it ends: without one, it still runs.
      const accepted = await this.link.client.call("entry/list", { run: this.run, pattern: "log://*", status: ENTRY.done });
      for (const entry of accepted.entries) {
        const log = producerOf(entry);
        const id = log.toolCallId ?? log.path;
        const ending = endingOf(log);
        if (ending) {
          // Ended while this session was not following it (the server restarted, the connection dropped): the editor is told how.
          const known = this.#tools.get(this.#byPath.get(log.path) ?? id);
          if (known && !known.settled && !known.output) {
            this.#markSettled(known);
            await this.#change(known, finalChange(ending, log.path, this.editor.terminal ? { terminalId: known.id } : { text: "" }));
          }
          continue;
        }
        const view = await this.#view(id, log.path, callArguments(log), log.tool);
        if (view.settled || view.output) continue;
        view.resolved = true;
        await this.#change(view, { status: "in_progress" });
        this.#follow(view);
      }
    });
  }

  /**
   * After the connection to the server came back: notifications sent meanwhile are lost, so a turn whose
   * loop ended is answered from the run's status, and pending proposals and running commands are looked up.
   */
  resync(): void {
    this.#enqueue(async () => {
      const turn = this.#turn;
      if (!turn || turn.loop === null) return;
      const { run } = await this.link.client.call("run/get", { run: this.run });
      if (OPEN_RUN.includes(run.status)) return;
      if (run.status === RUN.done) turn.finish({ stop: "end_turn" });
      else if (run.status === RUN.aborted) turn.finish({ stop: "cancelled" });
      else turn.finish({ error: "the loop failed while the connection to the Spool server was down" });
    });
    this.catchUp();
  }

  /**
   * `session/close`: the session's ongoing work is cancelled (permission requests withdrawn, the run's loop
   * aborted, which rejects its proposals and cancels its commands), a running prompt is answered
   * "cancelled" after its tool calls' last updates, then the session stops showing the run.
   */
  async end(): Promise<void> {
    for (const view of this.#tools.values()) this.#withdraw(view);
    await this.#abort(`session closed in ${this.editor.name}`);
    const turn = this.#turn;
    if (turn) {
      this.#enqueue(async () => turn.finish({ stop: "cancelled" }));
      await turn.answered;
    }
    await this.close();
  }

  /** The editor went away (or the bridge stops): stop showing the run, which goes on for other clients. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const off of this.#off) off();
    for (const view of this.#tools.values()) {
      this.#withdraw(view);
      await view.output?.close();
      view.output = null;
    }
    this.#turn?.finish({ stop: "cancelled" });
    this.#queue.length = 0;
  }

  // ---- Spool's notifications -----------------------------------------------------------------------

  #onText(loop: number, turn: number, delta: string): void {
    if (this.#loopText.loop !== loop) this.#loopText = { loop, turn, any: false, reply: "" };
    // A loop that ends with a reply in plain text has that reply as its summary: only the latest reply counts.
    if (this.#loopText.turn !== turn) this.#loopText = { ...this.#loopText, turn, reply: "" };
    if (delta) this.#loopText.any = true;
    // Only needed to compare with a summary: a long text is taken as different from any.
    if (this.#loopText.reply.length < 256 * 1024) this.#loopText.reply += delta;
    if (this.#text && !this.#text.sent) {
      this.#text.text += delta;
      return;
    }
    const chunk = { text: delta, sent: false };
    this.#enqueue(async () => {
      chunk.sent = true;
      await this.#send({ sessionUpdate: "agent_message_chunk", content: { type: "text", text: chunk.text } });
    });
    this.#text = chunk;
  }

  async #onTool(p: SpoolNotifications["run/tool"]): Promise<void> {
    if (p.tool === "done") return;
    const view = await this.#view(p.id, isCommandTool(p.tool) ? p.path : null, p.arguments, p.tool);
    if (p.status !== "completed" && p.status !== "failed") return;
    if (view.settled) return;
    // A command's tool call follows its producer; without one (it could not be proposed), or for the other tools, the answer settles it.
    if (isCommandTool(p.tool) && view.path) return;
    await this.#settle(view, p.status, p.result ?? "");
  }

  /** A proposal as announced, or as catchUp rebuilds it from its log entry (which does not need its time). */
  async #onProposal(p: ProposalView): Promise<void> {
    const view = await this.#view(p.toolCallId ?? p.path, p.path, callArguments(p.producer), p.producer.tool);
    if (view.resolved || view.permission || view.deciding || view.settled) return;
    view.facts = p.producer;
    // The runner a decision here picks, named in the request (its name only: the request goes out without it if the list fails).
    const runners = view.facts.runner === null ? await this.link.client.call("runner/list", {}).catch(() => null) : null;
    this.#ask(view, runners ? defaultRunnerName(runners.runners) : null);
  }

  async #onResolved(p: SpoolNotifications["run/resolved"]): Promise<void> {
    const id = this.#byPath.get(p.path) ?? p.toolCallId ?? p.path;
    let view = this.#tools.get(id);
    if (!view) {
      // Decided before this session saw it proposed (a rule, or before a load): its tool and command are in the log entry.
      const log = producerOf(await this.link.client.call("entry/get", { run: this.run, path: p.path }));
      view = await this.#view(id, p.path, callArguments(log), log.tool);
    }
    this.#locate(view, p.path);
    if (view.resolved) return;
    view.resolved = true;
    this.#withdraw(view);
    if (p.decision === "reject") {
      await this.#settle(view, "failed", `rejected by ${p.resolvedBy}${p.reason ? `: ${p.reason}` : ""}`);
      return;
    }
    await this.#change(view, { status: "in_progress" });
    this.#follow(view);
  }

  async #onState(p: SpoolNotifications["run/state"]): Promise<void> {
    const loop = p.loop?.seq;
    if (p.event === "loop finished" && loop !== undefined) {
      const summary = typeof p.summary === "string" ? p.summary.trim() : "";
      // The summary is sent only when the editor has not just seen it: a plain-text answer is the summary itself.
      const said = this.#loopText.loop === loop ? this.#loopText : null;
      if (summary && summary !== said?.reply.trim())
        await this.#send({ sessionUpdate: "agent_message_chunk", content: { type: "text", text: `${said?.any ? "\n\n" : ""}${summary}` } });
      this.#ended(loop, { stop: "end_turn" });
    } else if (p.event === "loop failed" && loop !== undefined) {
      this.#ended(loop, { error: String(p.error ?? "unknown error") });
    } else if (p.event === "aborted" && this.#turn) {
      // run/abort (ours or another client's) ends every open loop of the run.
      this.#turn.finish({ stop: "cancelled" });
    }
  }

  #ended(loop: number, outcome: { stop: StopReason } | { error: string }): void {
    if (this.#turn?.loop === loop) {
      this.#turn.finish(outcome);
      return;
    }
    this.#endings.set(loop, outcome);
    if (this.#endings.size > MAX_ENDINGS) this.#endings.delete(this.#endings.keys().next().value!);
  }

  // ---- tool calls -------------------------------------------------------------------------------------

  /** The tool call with this id, announced to the editor (`tool_call`) the first time it is seen. */
  async #view(id: string, path: string | null, args: Record<string, unknown>, tool = String(args.tool ?? "sh")): Promise<ToolView> {
    let view = this.#tools.get(id);
    if (!view) {
      const rawInput: Record<string, unknown> = { ...args };
      const look = toolLook(tool, rawInput);
      view = {
        id,
        tool,
        ...look,
        rawInput,
        path: null,
        facts: null,
        resolved: false,
        settled: false,
        known: null,
        permission: null,
        deciding: false,
        output: null,
        turn: this.#turns,
      };
      this.#tools.set(id, view);
      this.#forgetOld();
      const terminal = this.editor.terminal && isCommandTool(tool);
      await this.#send({
        sessionUpdate: "tool_call",
        toolCallId: id,
        title: look.title,
        kind: look.kind,
        status: "pending",
        rawInput,
        ...(terminal
          ? {
              content: [{ type: "terminal", terminalId: id }],
              _meta: { terminal_info: { terminal_id: id, cwd: this.#cwd(rawInput) } },
            }
          : {}),
      });
    }
    if (path) this.#locate(view, path);
    return view;
  }

  /** Ties a command's tool call to its producer's log entry. */
  #locate(view: ToolView, path: string): void {
    if (view.path || !isCommandTool(view.tool)) return;
    view.path = path;
    this.#byPath.set(path, view.id);
  }

  #cwd(args: Record<string, unknown>): string {
    const cwd = typeof args.cwd === "string" ? args.cwd : "";
    return cwd ? `${this.link.root.replace(/\/$/, "")}/${cwd}` : this.link.root;
  }

  #forgetOld(): void {
    if (this.#tools.size <= MAX_TOOLS) return;
    for (const [id, view] of this.#tools) {
      if (this.#tools.size <= MAX_TOOLS) return;
      if (!view.settled) continue;
      this.#tools.delete(id);
      if (view.path) this.#byPath.delete(view.path);
    }
  }

  /**
   * A proposal becomes `session/request_permission`; the editor's answer resolves it, unless someone decided
   * first. The request carries every fact a person must see (src/protocol/proposal-facts.ts): as text in
   * the tool call's content (escaped, in a code block so nothing in it reads as Markdown; before the
   * terminal when the editor shows one), and as values in its rawInput.
   */
  #ask(view: ToolView, defaultRunner: string | null): void {
    const controller = new AbortController();
    view.permission = controller;
    const path = view.path!;
    const facts = view.facts!;
    const content: ToolCallContent[] = [{ type: "content", content: { type: "text", text: fenced(factsText(facts, { defaultRunner })) } }];
    if (this.editor.terminal && isCommandTool(view.tool)) content.push({ type: "terminal", terminalId: view.id });
    const rawInput = {
      ...view.rawInput,
      tool: facts.tool,
      command: facts.command,
      cwd: facts.cwd ?? "",
      env: Object.fromEntries(facts.env),
      tty: facts.tty,
      runner: facts.runner,
      ...(facts.runner === null ? { defaultRunner: facts.defaultRunner ?? defaultRunner } : {}),
      sandbox: facts.sandbox.mode === "unknown" ? facts.sandbox.given : facts.sandbox.mode,
      background: facts.background,
      timeout_ms: facts.timeoutMs,
    };
    this.editor
      .requestPermission(
        {
          sessionId: this.id,
          toolCall: { toolCallId: view.id, title: view.title, kind: view.kind, status: "pending", content, rawInput },
          options: PERMISSION_OPTIONS,
        },
        controller.signal,
      )
      .then(async (response) => {
        if (view.permission === controller) view.permission = null;
        // Withdrawn (someone else decided, or the turn was cancelled): a late answer changes nothing.
        if (controller.signal.aborted || this.#closed) return;
        // Cancelled by the editor on its own (no session/cancel: e.g. it cannot ask anyone): that proposal is refused.
        const option = response.outcome.outcome === "selected" ? response.outcome.optionId : null;
        const params =
          option === "allow_once" || option === "allow_always"
            ? { run: this.run, path, decision: "accept" as const, ...(option === "allow_always" ? { always: true } : {}) }
            : {
                run: this.run,
                path,
                decision: "reject" as const,
                reason: option === null ? `${this.editor.name} cancelled the permission request` : `rejected in ${this.editor.name}`,
              };
        view.deciding = true;
        try {
          for (let attempt = 1; ; attempt++) {
            try {
              await this.link.client.call("run/resolve", params);
              return;
            } catch (error) {
              // The server connection is down (a restart): the answer is kept and sent once it is back.
              if (error instanceof ConnectionClosedError && attempt < RESOLVE_ATTEMPTS && (await this.link.reconnected(RECONNECT_WAIT_MS))) continue;
              if (!isDecided(error)) this.log.warn(`resolving ${path} failed: ${error instanceof Error ? error.message : String(error)}`);
              return;
            }
          }
        } finally {
          view.deciding = false;
        }
      })
      .catch((error: unknown) => {
        if (view.permission === controller) view.permission = null;
        if (!controller.signal.aborted && !this.#closed)
          this.log.warn(`permission request for ${path} failed: ${error instanceof Error ? error.message : String(error)}`);
      });
  }

  /** Withdraws an open permission request (`$/cancel_request`). */
  #withdraw(view: ToolView): void {
    view.permission?.abort(new Error("decided elsewhere"));
    view.permission = null;
  }

  /** Streams an accepted command's output into its tool call until it ends. */
  #follow(view: ToolView): void {
    if (view.output || !view.path) return;
    const output = new CommandOutput({
      client: this.link.client,
      run: this.run,
      path: view.path,
      toolCallId: view.id,
      terminal: this.editor.terminal,
      send: (change) => this.#enqueue(() => this.#change(view, change)),
      reconnected: (ms) => this.link.reconnected(ms),
      log: this.log,
    });
    view.output = output;
    output
      .follow()
      .then((ending) => {
        if (ending) this.#markSettled(view);
      })
      .catch((error: unknown) => {
        if (!this.#closed) this.log.warn(`following ${view.path} failed: ${error instanceof Error ? error.message : String(error)}`);
      })
      .finally(() => {
        if (view.output === output) view.output = null;
      });
  }

  #markSettled(view: ToolView): void {
    view.settled = true;
    for (const waiter of this.#settledWaiters) waiter();
  }

  async #settle(view: ToolView, status: ToolCallStatus, text: string): Promise<void> {
    this.#markSettled(view);
    await this.#change(view, { status, content: [{ type: "content", content: { type: "text", text: tail(text) } }] });
  }

  #change(view: ToolView, change: ToolChange): Promise<void> {
    return this.#send({ sessionUpdate: "tool_call_update", toolCallId: view.id, ...change });
  }

  async #replayMessage(message: HistoryMessage): Promise<void> {
    if (message.role === "user") {
      if (!message.note && message.text) await this.#send({ sessionUpdate: "user_message_chunk", content: { type: "text", text: message.text } });
      return;
    }
    if (message.role === "assistant") {
      if (message.text) await this.#send({ sessionUpdate: "agent_message_chunk", content: { type: "text", text: message.text } });
      for (const call of message.toolCalls) {
        if (call.tool === "done") continue;
        const view = await this.#view(call.id, call.path, call.arguments, call.tool);
        view.known = call.status;
        if (call.status !== null && call.status !== ENTRY.proposed) view.resolved = true;
        if (call.status !== null && call.status !== ENTRY.proposed && call.status !== ENTRY.streaming) view.settled = true;
      }
      return;
    }
    const view = message.toolCallId ? this.#tools.get(message.toolCallId) : undefined;
    if (!view || !message.text) return;
    const content: ToolCallContent[] = [{ type: "content", content: { type: "text", text: tail(message.text) } }];
    if (isCommandTool(view.tool) && view.path) {
      // The result the model read; a command still running is followed live after the load.
      const status: ToolCallStatus = view.known === ENTRY.streaming ? "in_progress" : view.known === ENTRY.done ? "completed" : "failed";
      await this.#change(view, { content, status });
      return;
    }
    await this.#settle(view, message.text.startsWith("error:") ? "failed" : "completed", message.text);
  }

  // ---- the ordered queue of updates ---------------------------------------------------------------

  #send(update: SessionUpdate): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.editor.update(this.id, update);
  }

  #enqueue(task: () => Promise<void>): void {
    if (this.#closed) return;
    if (this.#queue.length >= MAX_QUEUED) {
      if (this.#dropped++ === 0) this.log.warn(`session ${this.id}: the editor is not reading; updates are dropped until it catches up`);
      return;
    }
    this.#text = null;
    this.#queue.push(task);
    if (!this.#draining) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      for (let task = this.#queue.shift(); task; task = this.#queue.shift()) {
        try {
          await task();
        } catch (error) {
          if (!this.#closed) this.log.warn(`session ${this.id}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    } finally {
      this.#draining = false;
      this.#dropped = 0;
    }
  }
}

/** What describes a command's tool call, from its producer (a call the editor learns of from its log entry): as the model would pass it. */
function callArguments(p: Producer): Record<string, unknown> {
  return {
    command: p.command,
    ...(p.cwd !== null ? { cwd: p.cwd } : {}),
    ...(p.env.length > 0 ? { env: Object.fromEntries(p.env) } : {}),
    ...(p.timeoutMs !== null ? { timeout_ms: p.timeoutMs } : {}),
  };
}
