import { RequestError, type StopReason } from "@agentclientprotocol/sdk";
import { SpoolRpcError } from "../client/spool-client.js";
import type { SpoolNotifications } from "../protocol/notifications.js";
import { OPEN_RUN, RUN } from "../protocol/status.js";
import { isCommandTool } from "./content.js";
import { withdraw } from "./permissions.js";
import { acpError, type SessionScope } from "./scope.js";
import type { ToolCalls } from "./tool-calls.js";

type Outcome = { stop: StopReason } | { error: string };

interface Turn {
  loop: number | null;
  finish(outcome: Outcome): void;
  /** Resolves once the prompt has been answered (or has failed). */
  answered: Promise<void>;
}

/** What a prompt asks of the run besides its text. */
export interface PromptOptions {
  mode: "ask" | "act";
  model: string | null;
  /** The editor's W3C trace context (`_meta.traceparent`): the traces of the proposals the prompt leads to continue it. */
  traceparent?: string | undefined;
  /** Called once the run took the prompt (its loop's number): ACP v2 answers the prompt then. */
  inserted?: ((loop: number) => void) | undefined;
}

/** Loop endings remembered until a prompt claims them. */
const MAX_ENDINGS = 64;
/** How long a cancelled turn waits for its tool calls' final updates before it ends them itself and answers. */
const CANCEL_SETTLE_MS = 5_000;

/**
 * A session's prompt turns: each prompt becomes the run's next loop, and is answered when that loop ends
 * (`end_turn`), fails (an error), or is cancelled — after the updates of its tool calls went out. The model's
 * text goes to the editor as it comes; a loop's summary only when the editor has not just seen it.
 */
export class Turns {
  #turn: Turn | null = null;
  /** Prompt turns so far. */
  #count = 0;
  readonly #endings = new Map<number, Outcome>();
  /** The model's text in the current loop (any said) and in its latest reply, to tell whether a summary repeats it. */
  #loopText = { loop: -1, turn: -1, any: false, reply: "" };
  /** The run's title as the editor was last told it. */
  #title: string | null = null;

  constructor(
    private readonly scope: SessionScope,
    private readonly tools: ToolCalls,
  ) {}

  get count(): number {
    return this.#count;
  }

  /** Whether a prompt turn is running (not yet answered). */
  get busy(): boolean {
    return this.#turn !== null;
  }

  /** A prompt turn: the prompt becomes the run's next loop; answers when that loop ends (or is cancelled). */
  async prompt(text: string, options: PromptOptions): Promise<StopReason> {
    const { scope } = this;
    if (this.#turn) throw RequestError.invalidRequest({ sessionId: scope.id }, "a prompt turn is already running in this session");
    let finish!: Turn["finish"];
    const done = new Promise<Outcome>((resolve) => (finish = resolve));
    let answered!: () => void;
    const turn: Turn = { loop: null, finish, answered: new Promise<void>((resolve) => (answered = resolve)) };
    this.#turn = turn;
    this.#count++;
    try {
      const reply = await scope.link.client
        .call("run/prompt", {
          run: scope.run,
          prompt: text,
          mode: options.mode,
          ...(options.model ? { model: options.model } : {}),
          ...(options.traceparent ? { traceparent: options.traceparent } : {}),
        })
        .catch((error: unknown) => {
          throw acpError(error);
        });
      turn.loop = reply.loop;
      options.inserted?.(reply.loop);
      if (reply.run.title && reply.run.title !== this.#title) {
        const title = reply.run.title;
        this.#title = title;
        scope.updates.enqueue(() =>
          scope.updates.send({ sessionUpdate: "session_info_update", title, updatedAt: new Date(reply.run.updatedAt).toISOString() }),
        );
      }
      const ended = this.#endings.get(reply.loop);
      if (ended) turn.finish(ended);
      else if (reply.run.status === RUN.aborted) turn.finish({ stop: "cancelled" });
      const outcome = await done;
      // ACP: every update of the cancelled tool calls goes out before the turn is answered "cancelled".
      if ("stop" in outcome && outcome.stop === "cancelled") await this.#settleCancelled();
      await this.#quiesce();
      if ("error" in outcome) throw new RequestError(-32603, `The run's loop ${reply.loop} failed: ${outcome.error}`, { run: scope.run, loop: reply.loop });
      return outcome.stop;
    } finally {
      if (this.#turn === turn) this.#turn = null;
      answered();
    }
  }

  /**
   * `session/cancel`: aborts the run's loop (Spool rejects its proposals and cancels its commands); the turn answers
   * "cancelled". A client following a session another client prompted cancels that prompt's work just the same.
   */
  async cancel(): Promise<void> {
    this.tools.withdrawAll();
    const turn = this.#turn;
    await this.#abort(`cancelled in ${this.scope.editor.name}`);
    if (!turn) return;
    // After the run's own events (its abort, or the loop's ending when it ended first); the turn then waits for its tool calls.
    this.scope.updates.enqueue(async () => turn.finish({ stop: "cancelled" }));
  }

  /** `session/close`: the run's loop is aborted, and a running prompt answered "cancelled" after its tool calls' last updates. */
  async end(): Promise<void> {
    this.tools.withdrawAll();
    await this.#abort(`session closed in ${this.scope.editor.name}`);
    const turn = this.#turn;
    if (turn) {
      this.scope.updates.enqueue(async () => turn.finish({ stop: "cancelled" }));
      await turn.answered;
    }
  }

  /** The session stops showing the run: a running prompt is answered "cancelled" at once. */
  close(): void {
    this.#turn?.finish({ stop: "cancelled" });
  }

  /** After the connection came back (notifications sent meanwhile are lost): a turn whose loop ended is answered from the run's status. */
  resync(): void {
    this.scope.updates.enqueue(async () => {
      const turn = this.#turn;
      if (!turn || turn.loop === null) return;
      const { run } = await this.scope.link.client.call("run/get", { run: this.scope.run });
      if (OPEN_RUN.includes(run.status)) return;
      if (run.status === RUN.done) turn.finish({ stop: "end_turn" });
      else if (run.status === RUN.aborted) turn.finish({ stop: "cancelled" });
      else turn.finish({ error: "the loop failed while the connection to the Spool server was down" });
    });
  }

  // ---- Spool's notifications -----------------------------------------------------------------------

  onText(loop: number, turn: number, delta: string): void {
    if (this.#loopText.loop !== loop) this.#loopText = { loop, turn, any: false, reply: "" };
    // A loop that ends with a reply in plain text has that reply as its summary: only the latest reply counts.
    if (this.#loopText.turn !== turn) this.#loopText = { ...this.#loopText, turn, reply: "" };
    if (delta) this.#loopText.any = true;
    // Only needed to compare with a summary: a long text is taken as different from any.
    if (this.#loopText.reply.length < 256 * 1024) this.#loopText.reply += delta;
    this.scope.updates.text(delta);
  }

  async onState(p: SpoolNotifications["run/state"]): Promise<void> {
    const loop = p.loop?.seq;
    const { foreground, updates } = this.scope;
    // Idle goes out after the loop's commands have sent their last updates (their output may still be on its way).
    const idle = (stop: Parameters<typeof foreground.ended>[0]) => {
      const send = foreground.ended(stop);
      void this.tools.outputsQuiet().then(() => updates.enqueue(send));
    };
    if (p.event === "loop started") await foreground.loopStarted();
    else if (p.event === "loop finished") idle({ state: "idle", stopReason: "end_turn" });
    else if (p.event === "loop failed") idle({ state: "idle", stopReason: "error", error: String(p.error ?? "unknown error") });
    else if (p.event === "aborted") idle({ state: "idle", stopReason: "cancelled" });
    if (p.event === "loop finished" && loop !== undefined) {
      const summary = typeof p.summary === "string" ? p.summary.trim() : "";
      // The summary is sent only when the editor has not just seen it: a plain-text answer is the summary itself.
      const said = this.#loopText.loop === loop ? this.#loopText : null;
      if (summary && summary !== said?.reply.trim())
        await this.scope.updates.send({ sessionUpdate: "agent_message_chunk", content: { type: "text", text: `${said?.any ? "\n\n" : ""}${summary}` } });
      this.#ended(loop, { stop: "end_turn" });
    } else if (p.event === "loop failed" && loop !== undefined) {
      this.#ended(loop, { error: String(p.error ?? "unknown error") });
    } else if (p.event === "aborted" && this.#turn) {
      // run/abort (ours or another client's) ends every open loop of the run.
      this.#turn.finish({ stop: "cancelled" });
    }
  }

  #ended(loop: number, outcome: Outcome): void {
    if (this.#turn?.loop === loop) {
      this.#turn.finish(outcome);
      return;
    }
    this.#endings.set(loop, outcome);
    if (this.#endings.size > MAX_ENDINGS) this.#endings.delete(this.#endings.keys().next().value!);
  }

  // ---- ending a turn -----------------------------------------------------------------------------------

  /** `run/abort`: rejects the run's proposals and cancels its commands; a run that is not running any more is left as it is. */
  async #abort(reason: string): Promise<void> {
    try {
      await this.scope.link.client.call("run/abort", { run: this.scope.run, reason });
    } catch (error) {
      // Not running any more: the loop ended meanwhile, and its ending answers the turn.
      if (!(error instanceof SpoolRpcError && error.errorCode === "CONFLICT")) this.scope.log.warn(`run/abort of ${this.scope.run} failed: ${String(error)}`);
    }
  }

  /**
   * A cancelled turn: tools without a producer get no answer after an abort, so they end here; commands end
   * when Spool reports their producers rejected or cancelled. One not seen ending in time is ended here and
   * no longer followed, so nothing of this turn reaches the editor after its answer.
   */
  async #settleCancelled(): Promise<void> {
    const { tools, scope } = this;
    if (scope.updates.closed) return;
    scope.updates.enqueue(async () => {
      for (const view of tools.all()) if (tools.live(view) && !isCommandTool(view.tool)) await tools.settle(view, "failed", "cancelled");
    });
    await tools.untilSettled(CANCEL_SETTLE_MS);
    scope.updates.enqueue(async () => {
      for (const view of tools.all()) {
        if (!tools.live(view)) continue;
        withdraw(view);
        const output = view.output;
        view.output = null;
        await output?.close();
        await tools.settle(
          view,
          "failed",
          `cancelled; its end was not seen within ${CANCEL_SETTLE_MS / 1000} s${view.path ? ` (Spool's entry ${view.path} records it)` : ""}`,
        );
      }
    });
  }

  /** Before a turn is answered: commands that ended have sent their last updates, and every queued update is out. */
  async #quiesce(): Promise<void> {
    await this.tools.outputsQuiet();
    await this.scope.updates.flushed();
  }
}
