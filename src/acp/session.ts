import {
  RequestError,
  type SessionConfigOption,
  type SessionModeState,
  type SessionUpdate,
  type StopReason,
  type ToolCallContent,
  type ToolCallStatus,
} from "@agentclientprotocol/sdk";
import type { Logger } from "../logger.js";
import { compactionWords } from "../protocol/agent-words.js";
import type { ResultOf } from "../protocol/methods/index.js";
import type { SpoolNotifications } from "../protocol/notifications.js";
import { ENTRY, OPEN_RUN } from "../protocol/status.js";
import { producerOf, proposalView } from "../protocol/views.js";
import { BudgetAsks } from "./budget.js";
import { isCommandTool, tail } from "./content.js";
import { endingOf, finalChange } from "./output.js";
import type { ProjectLink, SessionScope } from "./scope.js";
import { Foreground } from "./state.js";
import { callArguments, ToolCalls } from "./tool-calls.js";
import { Turns } from "./turns.js";
import { COMPACTION_META, type Editor, UpdateQueue } from "./updates.js";

export interface Model {
  alias: string;
  provider: string;
  model: string;
}

type Mode = "ask" | "act";

type HistoryMessage = ResultOf<"run/history">["messages"][number];

/** The message id of the prompt that began a loop of the run (ACP v2's prompt answer, live and replayed). */
export const promptMessageId = (loop: number) => `prompt-${loop}`;

/** Messages a `session/load` replays at most. */
const MAX_REPLAY = 20_000;

const MODES: { id: Mode; name: string; description: string }[] = [
  { id: "act", name: "Act", description: "The model proposes shell commands; each runs once you allow it" },
  { id: "ask", name: "Ask", description: "Read-only commands only, in a sandbox" },
];

/**
 * An ACP session: one Spool run seen from an editor. Turns Spool's notifications about the run into
 * `session/update`s in the order they came (text, tool calls, permission requests, command output),
 * prompts the run and answers the prompt when its loop ends (turns.ts), and decides proposals with the
 * editor's answers (permissions.ts, tool-calls.ts). The run is the state; closing the session (or the
 * editor) leaves it running.
 */
/**
 * A compaction in ACP v1's terms: the agent's words (a line when it starts, the summary as it streams, a line when it
 * is done), with the notice in `_meta` so that an encoder for v2 sends `compaction_update` and
 * `compaction_summary_chunk` instead (v2.ts).
 */
export function compactionUpdate(p: SpoolNotifications["run/compaction"]): SessionUpdate {
  const text =
    p.phase === "started"
      ? `\n\n── compacting the conversation (${p.reason === "window" ? "near the model's context window" : "the model said it was too long"}) …\n`
      : p.phase === "chunk"
        ? (p.delta ?? "")
        : p.phase === "completed"
          ? `\n${compactionWords({ replaced: p.replaced ?? 0, reason: p.reason, tokensBefore: p.tokensBefore ?? 0, tokensAfter: p.tokensAfter ?? 0 })}\n\n`
          : `\n── compacting the conversation failed: ${p.error ?? "unknown error"} ──\n\n`;
  return { sessionUpdate: "agent_message_chunk", content: { type: "text", text }, _meta: { [COMPACTION_META]: p } };
}

export class AcpSession {
  mode: Mode;
  model: string | null;
  readonly foreground: Foreground;
  readonly #updates: UpdateQueue;
  readonly #tools: ToolCalls;
  readonly #turns: Turns;
  readonly #budgets: BudgetAsks;
  readonly #off: (() => void)[] = [];

  constructor(
    readonly id: string,
    readonly link: ProjectLink,
    readonly run: string,
    private readonly editor: Editor,
    readonly models: Model[],
    init: { mode: Mode; model: string | null },
    log: Logger,
  ) {
    this.mode = init.mode;
    this.model = init.model;
    const updates = new UpdateQueue(id, editor, log);
    this.foreground = new Foreground(id, editor);
    const scope: SessionScope = { id, run, link, editor, log, updates, foreground: this.foreground, turns: () => this.#turns.count };
    this.#updates = updates;
    this.#tools = new ToolCalls(scope);
    this.#turns = new Turns(scope, this.#tools);
    const tools = this.#tools;
    const turns = this.#turns;
    const on = <N extends keyof SpoolNotifications>(method: N, handle: (p: SpoolNotifications[N]) => void) =>
      this.#off.push(link.client.on(method, (p: SpoolNotifications[N]) => (p as { run?: string }).run === run && !updates.closed && handle(p)));
    on("run/progress", (p) => turns.onText(p.loop, p.turn, p.delta));
    on("run/tool", (p) => updates.enqueue(() => tools.onTool(p)));
    on("run/proposal", (p) => updates.enqueue(() => tools.onProposal(proposalView(p))));
    on("run/resolved", (p) => updates.enqueue(() => tools.onResolved(p)));
    const budgets = new BudgetAsks(scope);
    this.#budgets = budgets;
    on("run/state", (p) => updates.enqueue(() => turns.onState(p)));
    const budgetEvents = new Set(["budget reached", "budget raised", "aborted", "loop failed"]);
    on("run/state", (p) => budgetEvents.has(p.event) && updates.enqueue(() => budgets.onState(p)));
    on("run/compaction", (p) => updates.enqueue(() => updates.send(compactionUpdate(p))));
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

  // ---- prompt turns (turns.ts) ---------------------------------------------------------------------

  /** Whether a prompt turn is running in it. */
  get busy(): boolean {
    return this.#turns.busy;
  }

  /** A prompt turn; `traceparent`: the editor's W3C trace context, which the traces of its proposals continue. */
  prompt(text: string, traceparent?: string, inserted?: (loop: number) => void): Promise<StopReason> {
    return this.#turns.prompt(text, { mode: this.mode, model: this.model, traceparent, inserted });
  }

  /** Shows the editor its prompt as a user message with this id (ACP v2 echoes each prompt it inserts). */
  echo(text: string, messageId: string): void {
    this.#updates.enqueue(() => this.#updates.send({ sessionUpdate: "user_message_chunk", messageId, content: { type: "text", text } }));
  }

  /** Sends the session's foreground state as it is now (ACP v2's resume), after every update queued before. */
  async sendState(): Promise<void> {
    const [{ run }, pending] = await Promise.all([
      this.link.client.call("run/get", { run: this.run }),
      this.link.client.call("entry/list", { run: this.run, pattern: "log://*", status: ENTRY.proposed }),
    ]);
    const open = OPEN_RUN.includes(run.status);
    const done = new Promise<void>(
      (resolve) =>
        this.#updates.enqueue(async () => {
          await this.foreground.snapshot(
            open,
            pending.entries.map((e) => e.path),
          );
          resolve();
        }) || resolve(),
    );
    await done;
  }

  /** Stops one running command (ACP v2's `terminal/cancel`; a terminal's id is its tool call's). */
  cancelCommand(toolCallId: string): Promise<void> {
    return this.#tools.cancelCommand(toolCallId);
  }

  /** `session/cancel`. */
  cancel(): Promise<void> {
    return this.#turns.cancel();
  }

  // ---- opening: history and what is under way ----------------------------------------------------

  /** `session/load`: the run's conversation as updates (prompts, text, tool calls with their results), before anything live. */
  replay(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#updates.enqueue(async () => {
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

  /**
   * Asks the editor about the run's pending proposals, and its budget if it is paused at one, and follows its
   * running commands (after load or resume).
   */
  catchUp(): void {
    const tools = this.#tools;
    this.#updates.enqueue(async () => this.#budgets.sync((await this.link.client.call("run/get", { run: this.run })).run));
    this.#updates.enqueue(async () => {
      const pending = await this.link.client.call("entry/list", { run: this.run, pattern: "log://*", status: ENTRY.proposed });
      for (const log of pending.entries) await tools.onProposal(proposalView({ ...log, run: this.run, producer: producerOf(log) }));
      // An accepted producer's log entry records its final status when it ends: without one, it still runs.
      const accepted = await this.link.client.call("entry/list", { run: this.run, pattern: "log://*", status: ENTRY.done });
      for (const entry of accepted.entries) {
        const log = producerOf(entry);
        const id = log.toolCallId ?? log.path;
        const ending = endingOf(log);
        if (ending) {
          // Ended while this session was not following it (the server restarted, the connection dropped): the editor is told how.
          const known = tools.byPath(log.path, id);
          if (known && !known.settled && !known.output) {
            tools.markSettled(known);
            await tools.change(known, finalChange(ending, log.path, this.editor.terminal ? { terminalId: known.id } : { text: "" }));
          }
          continue;
        }
        const view = await tools.view(id, log.path, callArguments(log), log.tool);
        if (view.settled || view.output) continue;
        view.resolved = true;
        await tools.change(view, { status: "in_progress" });
        tools.follow(view);
      }
    });
  }

  /**
   * After the connection to the server came back: notifications sent meanwhile are lost, so a turn whose
   * loop ended is answered from the run's status, and pending proposals and running commands are looked up.
   */
  resync(): void {
    this.#turns.resync();
    this.catchUp();
  }

  /**
   * `session/close`: the session's ongoing work is cancelled (permission requests withdrawn, the run's loop
   * aborted, which rejects its proposals and cancels its commands), a running prompt is answered
   * "cancelled" after its tool calls' last updates, then the session stops showing the run.
   */
  async end(): Promise<void> {
    await this.#turns.end();
    // ACP v2: work the close cancelled ends idle ("cancelled") before the close is answered.
    if (this.editor.state && this.#updates.enqueue(this.foreground.ended({ state: "idle", stopReason: "cancelled" }))) await this.#updates.flushed();
    await this.close();
  }

  /** The editor went away (or the bridge stops): stop showing the run, which goes on for other clients. */
  async close(): Promise<void> {
    this.#updates.close();
    for (const off of this.#off) off();
    await this.#tools.close();
    this.#turns.close();
  }

  async #replayMessage(message: HistoryMessage): Promise<void> {
    const send = (update: Parameters<UpdateQueue["send"]>[0]) => this.#updates.send(update);
    if (message.role === "user") {
      if (!message.note && message.text) {
        const id = this.editor.messageIds && message.loop !== null ? { messageId: promptMessageId(message.loop) } : {};
        await send({ sessionUpdate: "user_message_chunk", ...id, content: { type: "text", text: message.text } });
      }
      return;
    }
    const tools = this.#tools;
    if (message.role === "assistant") {
      if (message.text) await send({ sessionUpdate: "agent_message_chunk", content: { type: "text", text: message.text } });
      for (const call of message.toolCalls) {
        if (call.tool === "done") continue;
        const view = await tools.view(call.id, call.path, call.arguments, call.tool);
        view.known = call.status;
        if (call.status !== null && call.status !== ENTRY.proposed) view.resolved = true;
        if (call.status !== null && call.status !== ENTRY.proposed && call.status !== ENTRY.streaming) view.settled = true;
      }
      return;
    }
    const view = message.toolCallId ? tools.get(message.toolCallId) : undefined;
    if (!view || !message.text) return;
    const content: ToolCallContent[] = [{ type: "content", content: { type: "text", text: tail(message.text) } }];
    if (isCommandTool(view.tool) && view.path) {
      // The result the model read; a command still running is followed live after the load.
      const status: ToolCallStatus = view.known === ENTRY.streaming ? "in_progress" : view.known === ENTRY.done ? "completed" : "failed";
      await tools.change(view, { content, status });
      return;
    }
    await tools.settle(view, message.text.startsWith("error:") ? "failed" : "completed", message.text);
  }
}
