import type { Core } from "../core/index.js";
import { runTransition } from "../core/index.js";
import type { BudgetCheck } from "../core/runs/budgets.js";
import { RUN } from "../core/status.js";
import type { LoopRow, RunRow } from "../core/views.js";
import type { Logger } from "../logger.js";
import { type ChatMessage, type ChatResponse, ContextLengthError, type ToolCall } from "../model/provider.js";
import type { RunEvent, RunStateFields } from "../protocol/common.js";
import type { ProjectRef } from "../rpc/connection-context.js";
import { COMPACT_AT, estimateTokens, type Held } from "./compaction.js";
import { Compactor } from "./compactor.js";
import { LENGTH_NOTE, malformedAnswer, SYSTEM_PROMPT } from "./loop-text.js";
import { isJsonObject, type Stored, type StoredAssistant, toWire } from "./stored.js";
import type { ModelTarget } from "./target.js";
import { runTool, type ToolOutcome, toolSpecs } from "./tools.js";

type Reached = NonNullable<Awaited<ReturnType<Core["budgets"]["reached"]>>>;

export type { ModelTarget };
export { toWire };

export interface AgentSettings {
  toolYieldMs: number;
  toolKillWaitMs: number;
  outputBudgetTokens: number;
  maxStepsPerLoop: number;
}

/** Replies cut at the output token limit (finish_reason "length") the loop continues in a row before it fails. */
export const MAX_LENGTH_CONTINUATIONS = 3;
/** Loops whose prompt's trace context is remembered (the newest). */
const MAX_TRACED = 1024;

/** Tool calls of the last model reply that no tool message answers (an aborted loop leaves them). */
function unansweredCalls(messages: Stored[]): ToolCall[] {
  const index = messages.findLastIndex((m) => m.role === "assistant");
  const reply = messages[index] as StoredAssistant | undefined;
  if (!reply?.tool_calls?.length) return [];
  const answered = new Set(messages.slice(index + 1).flatMap((m) => (m.role === "tool" ? [m.tool_call_id] : [])));
  return reply.tool_calls.filter((c) => !answered.has(c.id));
}

/**
 * Drives runs whose state is in the store: loops (one per prompt, FIFO),
 * messages, and proposals that name their tool call. `kick(runId)` looks at
 * what the store says and takes the next step; nothing that matters lives only
 * in memory, so a restart or another connection continues where it stopped.
 */
export class AgentDriver {
  readonly #driving = new Set<number>();
  readonly #again = new Set<number>();
  readonly #calls = new Map<number, AbortController>();
  /** The W3C trace context each loop's prompt came with (by loop id; the newest MAX_TRACED, in this process only). */
  readonly #traces = new Map<number, string>();

  readonly #compactor: Compactor;

  constructor(
    private readonly core: Core,
    private readonly models: (alias: string) => ModelTarget | undefined,
    private readonly settings: AgentSettings,
    private readonly log: Logger,
  ) {
    this.#compactor = new Compactor(core, log, this.#calls, (loop) => this.#toolSpecs(loop));
  }

  /** Takes the run's next steps, unless it is already being driven (then it looks again afterwards). */
  kick(runId: number): void {
    if (this.#driving.has(runId)) {
      this.#again.add(runId);
      return;
    }
    this.#driving.add(runId);
    void (async () => {
      let leased = false;
      try {
        // One server drives a run at a time: another one holding its lease is asked to look instead.
        const holder = await this.core.cluster.lease(runId);
        if (holder !== null) return this.core.cluster.kickElsewhere(holder, runId);
        leased = true;
        do {
          this.#again.delete(runId);
          await this.#drive(runId);
        } while (this.#again.has(runId));
      } catch (error) {
        this.log.error(`agent loop of run ${runId} failed`, error);
      } finally {
        this.#driving.delete(runId);
        if (leased) this.core.cluster.release(runId);
      }
    })();
  }

  /** The traces of the loop's proposals continue `traceparent` (a caller's span). */
  traceLoop(loopId: number, traceparent: string): void {
    this.#traces.set(loopId, traceparent);
    if (this.#traces.size > MAX_TRACED) this.#traces.delete(this.#traces.keys().next().value!);
  }

  /**
   * The run pauses at a budget (its loop too), before `before` (a model call, or proposing the model's next command):
   * the table in core/lifecycle/run-transitions.ts says from where. Receivers of notifications are told.
   */
  async #pause(run: RunRow, project: ProjectRef, loop: LoopRow, reached: Reached, before: BudgetCheck): Promise<void> {
    const to = runTransition(run.status, "pause");
    if (to === undefined) return;
    await this.core.runs.setLoop(loop, to);
    const paused = { ...run, attributes: JSON.stringify({ ...JSON.parse(run.attributes), budgetReached: reached, pausedBefore: before }) };
    await this.core.runs.saveAttributes(paused);
    await this.#setStatus(paused, project, to, "budget reached", { budget: reached }, loop);
    this.core.notifications.paused(project, paused, reached);
  }

  /**
   * A paused run whose budget was changed but is still reached where it paused: if the limit it is at is another
   * one now, its state says so (every client shows the new reason); false when it is no longer held.
   */
  async stillPaused(run: RunRow, project: ProjectRef): Promise<boolean> {
    const reached = await this.core.budgets.holds(run, project.name);
    if (!reached) return false;
    const attributes = JSON.parse(run.attributes) as { budgetReached?: Reached };
    const was = attributes.budgetReached;
    if (was?.kind === reached.kind && was.limit === reached.limit && was.used === reached.used) return true;
    const updated = { ...run, attributes: JSON.stringify({ ...attributes, budgetReached: reached }) };
    await this.core.runs.saveAttributes(updated);
    await this.#setStatus(updated, project, run.status, "budget reached", { budget: reached });
    return true;
  }

  /** A paused run goes on from where it was (its budget was raised past what it spent); it is driven again. */
  async resume(run: RunRow, project: ProjectRef): Promise<boolean> {
    const to = runTransition(run.status, "resume");
    if (to === undefined) return false;
    const loop = await this.#openLoop(run.id);
    if (loop?.status === RUN.paused) await this.core.runs.setLoop(loop, to);
    const { budgetReached: _was, pausedBefore: _before, ...rest } = JSON.parse(run.attributes) as Record<string, unknown>;
    const resumed = { ...run, attributes: JSON.stringify(rest) };
    await this.core.runs.saveAttributes(resumed);
    await this.#setStatus(resumed, project, to, "budget raised", {}, loop);
    this.kick(run.id);
    return true;
  }

  /** Stops the model call in flight for a run (abort). */
  interrupt(runId: number, reason: string): void {
    this.#calls.get(runId)?.abort(new Error(reason));
  }

  #setStatus(run: RunRow, project: ProjectRef, status: number, event: RunEvent, extra: RunStateFields = {}, about?: LoopRow): Promise<RunRow> {
    return this.core.runs.change(run, project, status, event, extra, about);
  }

  /** `run/tool` about one call of the model. */
  #announce(
    project: ProjectRef,
    run: RunRow,
    loop: LoopRow,
    call: ToolCall,
    status: "running" | "waiting" | "completed" | "failed",
    path: string | null,
    result: string | null = null,
  ): void {
    let args: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(call.function.arguments || "{}");
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) args = parsed as Record<string, unknown>;
    } catch {
      // not one JSON object: announced as {}
    }
    this.core.runs.tool(project, {
      run: run.alias,
      loop: loop.seq,
      turn: run.turn,
      id: call.id,
      tool: call.function.name,
      arguments: args,
      status,
      path,
      result,
    });
  }

  #openLoop(runId: number): Promise<LoopRow | undefined> {
    return this.core.runs.openLoop(runId);
  }

  /**
   * What the model is sent of the run's conversation, with ids: after a compaction, the system prompt, the summary
   * and what followed (an earlier summary that a later one replaced is left out).
   */
  async #context(runId: number): Promise<{ held: (Held & { message: Stored })[]; compactedAt: number }> {
    const { messages, compactedAt } = await this.core.conversation.context(runId);
    const held = messages.map(({ id, body }) => ({ id, message: JSON.parse(body) as Stored }));
    return { held: held.filter((h) => h.message.spool?.note !== "compaction" || h.id === compactedAt), compactedAt };
  }

  async #messages(runId: number): Promise<Stored[]> {
    return (await this.#context(runId)).held.map((h) => h.message);
  }

  async #addMessage(run: RunRow, loopId: number | null, message: Stored): Promise<void> {
    await this.core.conversation.add(run, loopId, message.role, JSON.stringify(message));
  }

  #finishLoop(loop: LoopRow, status: number): Promise<void> {
    return this.core.runs.setLoop(loop, status);
  }

  async #drive(runId: number): Promise<void> {
    for (;;) {
      let run = await this.core.conversation.run(runId);
      if (!run?.model || run.status === RUN.aborted) return;
      const project = await this.core.conversation.project(run);
      if (!project) return;
      const loop = await this.#openLoop(run.id);
      if (!loop) {
        if (run.status !== RUN.done && run.status !== RUN.failed) await this.#setStatus(run, project, RUN.done, "idle");
        return;
      }
      if (run.status === RUN.paused) {
        // Paused at a budget: it stays so until the budget is past what it spent (run/budget, or the config after a restart).
        if (await this.core.budgets.holds(run, project.name)) return;
        await this.resume(run, project);
        continue;
      }
      const target = this.models(run.model);
      if (!target) {
        await this.#fail(run, project, loop, `model "${run.model}" is no longer configured`);
        continue;
      }
      if (loop.status === RUN.queued) {
        const history = await this.#messages(run.id);
        if (history.length === 0) await this.#addMessage(run, loop.id, { role: "system", content: SYSTEM_PROMPT });
        // Calls an aborted loop left unanswered are answered now, so the conversation stays well-formed for the model server.
        for (const call of unansweredCalls(history)) {
          await this.#addMessage(run, null, { role: "tool", tool_call_id: call.id, content: "not run: the loop was aborted before this call was answered" });
        }
        await this.#addMessage(run, loop.id, { role: "user", content: loop.prompt });
        await this.core.runs.setLoop(loop, RUN.running);
        run = await this.#setStatus(run, project, RUN.running, "loop started", { prompt: loop.prompt });
        continue;
      }
      const { held, compactedAt } = await this.#context(run.id);
      const messages = held.map((h) => h.message);
      const last = messages.at(-1);
      const lastIndex = messages.findLastIndex((m) => m.role === "assistant");
      const lastAssistant = messages[lastIndex] as StoredAssistant | undefined;
      if (lastAssistant?.tool_calls?.length && last?.role !== "user") {
        // Only answers after the reply count: an id a server reused from an earlier turn is never taken as answered.
        const answered = new Set(
          messages
            .slice(lastIndex + 1)
            .filter((m): m is Extract<ChatMessage, { role: "tool" }> => m.role === "tool")
            .map((m) => m.tool_call_id),
        );
        const pending = lastAssistant.tool_calls.filter((c) => !answered.has(c.id));
        if (pending.length > 0) {
          const step = await this.#tools(run, project, loop, pending, lastAssistant);
          if (step === "waiting" || step === "stopped") return;
          continue;
        }
      } else if (last?.role === "assistant" && (last as StoredAssistant).spool?.truncated) {
        // Cut at the token limit: never a final answer. The model is told and goes on, a bounded number of times.
        let cut = 0;
        for (const m of [...messages].reverse()) {
          if (m.role === "assistant" && m.spool?.truncated) cut++;
          else if (!(m.role === "user" && m.spool?.note === "length")) break;
        }
        if (cut > MAX_LENGTH_CONTINUATIONS) {
          await this.#fail(
            run,
            project,
            loop,
            `the model's reply was cut at its output token limit (finish_reason "length") ${cut} times in a row; raise SPOOL_MODEL_<ALIAS>_MAX_TOKENS or ask for less`,
          );
          continue;
        }
        await this.#addMessage(run, loop.id, { role: "user", content: LENGTH_NOTE, spool: { note: "length" } });
        continue;
      } else if (last?.role === "assistant") {
        // The model answered in text without calling done: that ends the loop too.
        await this.#finishLoop(loop, RUN.done);
        await this.#setStatus(run, project, RUN.running, "loop finished", last.content !== null ? { summary: last.content } : {}, loop);
        continue;
      }
      const steps = await this.core.conversation.count(loop.id, "assistant");
      if (this.settings.maxStepsPerLoop > 0 && steps >= this.settings.maxStepsPerLoop) {
        await this.#fail(run, project, loop, `the loop took ${steps} model steps without finishing (limit ${this.settings.maxStepsPerLoop})`);
        continue;
      }
      const reached = await this.core.budgets.reached(run, project.name, "model call");
      if (reached) {
        // At a budget: no further model call. The run pauses where it is, and a person is asked to raise it.
        await this.#pause(run, project, loop, reached, "model call");
        return;
      }
      const window = await this.#compactor.window(target);
      if (window !== undefined && estimateTokens(toWire(messages), this.#toolSpecs(loop)) > window * COMPACT_AT) {
        // Near the window: the older conversation becomes a summary before the model is called.
        if (await this.#compactor.compact(run, project, loop, target, held, window, "window")) continue;
      }
      await this.#callModel(run, project, loop, target, held, compactedAt);
      run = (await this.core.conversation.run(runId))!;
      if (run.status === RUN.aborted) return;
    }
  }

  #toolSpecs(loop: LoopRow) {
    return toolSpecs(loop.mode, this.core.config.agent.modelInput);
  }

  async #callModel(
    run: RunRow,
    project: ProjectRef,
    loop: LoopRow,
    target: ModelTarget,
    held: (Held & { message: Stored })[],
    compactedAt: number,
  ): Promise<void> {
    const compacted = compactedAt > 0;
    // Nothing came after the summary: a "too long" now is not helped by compacting again.
    const freshlyCompacted = compacted && held.every((h) => h.id <= compactedAt);
    const messages = held.map((h) => h.message);
    // Every model call after the first is a new turn: its proposals go under turn_N+1.
    if (messages.some((m) => m.role === "assistant") || compacted) {
      run = { ...run, turn: run.turn + 1 };
      await this.core.conversation.setTurn(run, run.turn);
    }
    if (run.status !== RUN.running) run = await this.#setStatus(run, project, RUN.running, "model call");
    const controller = new AbortController();
    this.#calls.set(run.id, controller);
    const started = Date.now();
    try {
      const turn = run;
      const response = await target.provider.chat(
        { model: target.model, messages: toWire(messages), tools: this.#toolSpecs(loop), cacheKey: `spool-run-${run.id}` },
        {
          signal: controller.signal,
          onText: (delta) => this.core.runs.progress(project, { run: run.alias, turn: run.turn, loop: loop.seq, delta }),
          onRetry: ({ attempt, reason, delayMs }) => {
            this.log.warn(`run ${run.alias}: model call retried (attempt ${attempt}): ${reason}`);
            void this.core.runs
              .change(turn, project, RUN.running, "model retry", { attempt, reason, delayMs })
              .catch((error) => this.log.error(`run ${run.alias}: announcing a model retry failed`, error));
          },
        },
      );
      const current = await this.core.conversation.run(run.id);
      if (!current || current.status === RUN.aborted) return;
      await this.#compactor.spent(run, loop, target, response, Date.now() - started);
      const reply = this.#reply(run, messages, response);
      await this.#addMessage(run, loop.id, reply);
      await this.#setStatus(run, project, RUN.running, "model replied", {
        text: response.content,
        toolCalls: reply.tool_calls?.map((c) => c.function.name) ?? [],
        ...(response.finishReason ? { finishReason: response.finishReason } : {}),
        ...(response.usage ? { usage: response.usage } : {}),
      });
    } catch (error) {
      if (controller.signal.aborted) return;
      this.#calls.delete(run.id);
      // A call that failed took its time too (a seconds budget counts every model call's wall time, retries included).
      await this.core.conversation.worked(run.id, Date.now() - started);
      if (error instanceof ContextLengthError && !freshlyCompacted) {
        // The provider says the conversation is too long: compact (whatever the window was thought to be) and ask again, once.
        const window = Math.min((await this.#compactor.window(target)) ?? Number.POSITIVE_INFINITY, estimateTokens(toWire(messages), this.#toolSpecs(loop)));
        if (await this.#compactor.compact(run, project, loop, target, held, window, "too long")) return;
      }
      const message =
        error instanceof ContextLengthError
          ? `${error.message}${freshlyCompacted ? ", even right after its conversation was compacted" : ""}. Start a new run or a shorter prompt.`
          : error instanceof Error
            ? error.message
            : String(error);
      await this.#fail(run, project, loop, message);
    } finally {
      this.#calls.delete(run.id);
    }
  }

  /**
   * The assistant message to store for a reply: every tool call with an id
   * unique in the run (the server's, unless it sent none or one the run has
   * used, then call_<run>_<turn>_<index>), and arguments a server accepts
   * back (a JSON object; anything else is kept aside and the call answered
   * with an error).
   */
  #reply(run: RunRow, history: Stored[], response: ChatResponse): StoredAssistant {
    const used = new Set(history.flatMap((m) => (m.role === "assistant" ? (m.tool_calls ?? []).map((c) => c.id) : [])));
    const rawArguments: Record<string, string> = {};
    const calls = response.toolCalls.map((call, index): ToolCall => {
      let id = call.id;
      if (!id || used.has(id)) {
        const base = `call_${run.id}_${run.turn}_${index}`;
        id = base;
        for (let n = 2; used.has(id); n++) id = `${base}_${n}`;
      }
      used.add(id);
      if (isJsonObject(call.function.arguments)) return { ...call, id };
      rawArguments[id] = call.function.arguments;
      return { ...call, id, function: { ...call.function, arguments: "{}" } };
    });
    const truncated = response.finishReason === "length";
    const extras = { ...(Object.keys(rawArguments).length ? { rawArguments } : {}), ...(truncated ? { truncated } : {}) };
    return {
      role: "assistant",
      content: response.content || null,
      ...(calls.length ? { tool_calls: calls } : {}),
      // Reasoning its API wants back with this reply (Anthropic's signed thinking, Responses' reasoning items).
      ...(response.thinking?.length ? { thinking: response.thinking } : {}),
      ...(Object.keys(extras).length ? { spool: extras } : {}),
    };
  }

  /** Runs pending tool calls in order; stops at the first that waits for a person. */
  async #tools(run: RunRow, project: ProjectRef, loop: LoopRow, calls: ToolCall[], reply: StoredAssistant): Promise<"waiting" | "stopped" | "continue"> {
    const controller = new AbortController();
    this.#calls.set(run.id, controller);
    const started = Date.now();
    try {
      for (const [index, call] of calls.entries()) {
        const raw = reply.spool?.rawArguments?.[call.id];
        // sh and env announce themselves once, when they propose; the other tools each time they run.
        if (raw === undefined && call.function.name !== "sh" && call.function.name !== "env") this.#announce(project, run, loop, call, "running", null);
        const outcome: ToolOutcome =
          raw !== undefined
            ? { kind: "result" as const, content: malformedAnswer(call, raw, Boolean(reply.spool?.truncated)), failed: true }
            : await runTool(
                {
                  core: this.core,
                  project,
                  run,
                  loopId: loop.id,
                  loopSeq: loop.seq,
                  mode: loop.mode,
                  traceparent: this.#traces.get(loop.id),
                  yieldMs: this.settings.toolYieldMs,
                  killWaitMs: this.settings.toolKillWaitMs,
                  budgetTokens: this.settings.outputBudgetTokens,
                  signal: controller.signal,
                  announce: (status, path) => this.#announce(project, run, loop, call, status, path),
                },
                call,
              );
        const fresh = await this.core.conversation.run(run.id);
        if (!fresh || fresh.status === RUN.aborted) return "stopped";
        if (outcome.kind === "paused") {
          // Its budget is reached before this command is proposed: the call stays unanswered until the run goes on.
          await this.#pause(fresh, project, loop, outcome.reached, "proposal");
          return "stopped";
        }
        if (outcome.kind === "waiting") {
          // Already waiting (a second look at the same pending proposal): nothing changed, nothing to announce.
          if (fresh.status === RUN.waiting && loop.status === RUN.waiting) return "waiting";
          await this.core.runs.setLoop(loop, RUN.waiting);
          await this.#setStatus(fresh, project, RUN.waiting, "waiting on a proposal", { tool: call.function.name, path: outcome.path });
          return "waiting";
        }
        await this.#addMessage(fresh, loop.id, { role: "tool", tool_call_id: call.id, content: outcome.content });
        const failed = outcome.kind === "result" && (outcome.failed ?? outcome.content.startsWith("error:"));
        this.#announce(project, fresh, loop, call, failed ? "failed" : "completed", outcome.kind === "result" ? (outcome.path ?? null) : null, outcome.content);
        if (loop.status === RUN.waiting) await this.core.runs.setLoop(loop, RUN.running);
        await this.#setStatus(fresh, project, RUN.running, "tool call", {
          tool: call.function.name,
          ...(outcome.kind === "result" && outcome.path ? { path: outcome.path } : {}),
        });
        if (outcome.kind === "done") {
          // Calls after done in the same reply are answered, so the conversation stays well-formed.
          for (const rest of calls.slice(index + 1)) {
            await this.#addMessage(fresh, loop.id, { role: "tool", tool_call_id: rest.id, content: "skipped: the task was finished with done" });
          }
          await this.#finishLoop(loop, RUN.done);
          await this.core.conversation.annotate(fresh, { summary: outcome.summary });
          await this.#setStatus(fresh, project, RUN.running, "loop finished", { summary: outcome.summary }, loop);
          return "continue";
        }
      }
      return "continue";
    } finally {
      this.#calls.delete(run.id);
      // The step's time counts toward a seconds budget (a proposal waiting for a person returns at once).
      await this.core.conversation.worked(run.id, Date.now() - started);
    }
  }

  /** Ends the loop as failed with an error entry the client and the model history can show; the next queued loop still runs. */
  async #fail(run: RunRow, project: ProjectRef, loop: LoopRow, message: string): Promise<void> {
    await this.#finishLoop(loop, RUN.failed);
    await this.core.runs.recordError(run, loop, message);
    await this.core.conversation.annotate(run, { error: message });
    const more = await this.#openLoop(run.id);
    await this.#setStatus(run, project, more ? RUN.running : RUN.failed, "loop failed", { error: message }, loop);
  }
}
