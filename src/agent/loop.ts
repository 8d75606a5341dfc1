import type { Core } from "../core/index.js";
import { RUN } from "../core/status.js";
import type { Logger } from "../logger.js";
import { type ChatMessage, ContextLengthError, type ModelProvider, type ToolCall } from "../model/provider.js";
import type { ProjectRef } from "../rpc/connection-context.js";
import type { LoopRow, RunRow } from "../store/schema.js";
import { runTool, toolSpecs } from "./tools.js";

export interface ModelTarget {
  alias: string;
  model: string;
  provider: ModelProvider;
}

export interface AgentSettings {
  toolYieldMs: number;
  outputBudgetTokens: number;
  maxStepsPerLoop: number;
}

const SYSTEM_PROMPT = [
  "You are an agent working in a software project through Spool.",
  "Run shell commands with the sh tool (a person accepts or rejects each one) or env for read-only inspection.",
  "Command output comes back cleaned; large outputs are cut to a head and a tail, and the note says how to read the rest with get.",
  "Use wait for commands that are still running. Call done with a short summary when the task is finished.",
].join(" ");

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

  constructor(
    private readonly core: Core,
    private readonly models: (alias: string) => ModelTarget | undefined,
    private readonly settings: AgentSettings,
    private readonly log: Logger,
  ) {}

  /** Takes the run's next steps, unless it is already being driven (then it looks again afterwards). */
  kick(runId: number): void {
    if (this.#driving.has(runId)) {
      this.#again.add(runId);
      return;
    }
    this.#driving.add(runId);
    void (async () => {
      try {
        do {
          this.#again.delete(runId);
          await this.#drive(runId);
        } while (this.#again.has(runId));
      } catch (error) {
        this.log.error(`agent loop of run ${runId} failed`, error);
      } finally {
        this.#driving.delete(runId);
      }
    })();
  }

  /** Stops the model call in flight for a run (abort). */
  interrupt(runId: number, reason: string): void {
    this.#calls.get(runId)?.abort(new Error(reason));
  }

  #setStatus(run: RunRow, project: ProjectRef, status: number, event: string, extra: Record<string, unknown> = {}): Promise<RunRow> {
    return this.core.runs.change(run, project, status, event, extra);
  }

  #openLoop(runId: number): Promise<LoopRow | undefined> {
    return this.core.runs.openLoop(runId);
  }

  async #messages(runId: number): Promise<ChatMessage[]> {
    return (await this.core.repos.messages.listMessages(runId)).map((r) => JSON.parse(r.body) as ChatMessage);
  }

  async #addMessage(run: RunRow, loopId: number | null, message: ChatMessage): Promise<void> {
    await this.core.repos.messages.insertMessage({ run_id: run.id, loop_id: loopId, turn: run.turn, role: message.role, body: JSON.stringify(message) });
  }

  #finishLoop(loop: LoopRow, status: number): Promise<void> {
    return this.core.runs.setLoop(loop, status);
  }

  async #drive(runId: number): Promise<void> {
    for (;;) {
      let run = await this.core.repos.runs.findRunById(runId);
      if (!run?.model || run.status === RUN.aborted) return;
      const row = await this.core.repos.projects.findProjectById(run.project_id);
      if (!row) return;
      const project: ProjectRef = { id: row.id, name: row.name, root: row.root };
      const loop = await this.#openLoop(run.id);
      if (!loop) {
        if (run.status !== RUN.done && run.status !== RUN.failed) await this.#setStatus(run, project, RUN.done, "idle");
        return;
      }
      const target = this.models(run.model);
      if (!target) {
        await this.#fail(run, project, loop, `model "${run.model}" is no longer configured`);
        continue;
      }
      if (loop.status === RUN.queued) {
        const history = await this.#messages(run.id);
        if (history.length === 0) await this.#addMessage(run, loop.id, { role: "system", content: SYSTEM_PROMPT });
        await this.#addMessage(run, loop.id, { role: "user", content: loop.prompt });
        await this.core.runs.setLoop(loop, RUN.running);
        run = await this.#setStatus(run, project, RUN.running, "loop started", { prompt: loop.prompt });
        continue;
      }
      const messages = await this.#messages(run.id);
      const last = messages.at(-1);
      const lastAssistant = [...messages].reverse().find((m) => m.role === "assistant") as Extract<ChatMessage, { role: "assistant" }> | undefined;
      if (lastAssistant?.tool_calls?.length && last?.role !== "user") {
        const answered = new Set(messages.filter((m): m is Extract<ChatMessage, { role: "tool" }> => m.role === "tool").map((m) => m.tool_call_id));
        const pending = lastAssistant.tool_calls.filter((c) => !answered.has(c.id));
        if (pending.length > 0) {
          const step = await this.#tools(run, project, loop, pending);
          if (step === "waiting" || step === "stopped") return;
          continue;
        }
      } else if (last?.role === "assistant") {
        // The model answered in text without calling done: that ends the loop too.
        await this.#finishLoop(loop, RUN.done);
        await this.#setStatus(run, project, RUN.running, "loop finished", { summary: last.content });
        continue;
      }
      const steps = await this.core.repos.messages.countLoopMessages(loop.id, "assistant");
      if (steps >= this.settings.maxStepsPerLoop) {
        await this.#fail(run, project, loop, `the loop took ${steps} model steps without finishing (limit ${this.settings.maxStepsPerLoop})`);
        continue;
      }
      await this.#callModel(run, project, loop, target, messages);
      run = (await this.core.repos.runs.findRunById(runId))!;
      if (run.status === RUN.aborted) return;
    }
  }

  async #callModel(run: RunRow, project: ProjectRef, loop: LoopRow, target: ModelTarget, messages: ChatMessage[]): Promise<void> {
    // Every model call after the first is a new turn: its proposals go under turn_N+1.
    if (messages.some((m) => m.role === "assistant")) {
      run = { ...run, turn: run.turn + 1 };
      await this.core.repos.runs.updateRun(run.id, { turn: run.turn });
    }
    if (run.status !== RUN.running) run = await this.#setStatus(run, project, RUN.running, "model call");
    const controller = new AbortController();
    this.#calls.set(run.id, controller);
    try {
      const response = await target.provider.chat(
        { model: target.model, messages, tools: toolSpecs(loop.mode) },
        {
          signal: controller.signal,
          onText: (delta) => this.core.runs.progress(project, { run: run.alias, turn: run.turn, loop: loop.seq, delta }),
        },
      );
      const current = await this.core.repos.runs.findRunById(run.id);
      if (!current || current.status === RUN.aborted) return;
      await this.#addMessage(run, loop.id, {
        role: "assistant",
        content: response.content || null,
        ...(response.toolCalls.length ? { tool_calls: response.toolCalls } : {}),
      });
      await this.#setStatus(run, project, RUN.running, "model replied", {
        text: response.content,
        toolCalls: response.toolCalls.map((c) => c.function.name),
      });
    } catch (error) {
      if (controller.signal.aborted) return;
      const message =
        error instanceof ContextLengthError ? `${error.message}. Start a new run or a shorter prompt.` : error instanceof Error ? error.message : String(error);
      await this.#fail(run, project, loop, message);
    } finally {
      this.#calls.delete(run.id);
    }
  }

  /** Runs pending tool calls in order; stops at the first that waits for a person. */
  async #tools(run: RunRow, project: ProjectRef, loop: LoopRow, calls: ToolCall[]): Promise<"waiting" | "stopped" | "continue"> {
    const controller = new AbortController();
    this.#calls.set(run.id, controller);
    try {
      for (const [index, call] of calls.entries()) {
        const outcome = await runTool(
          {
            core: this.core,
            project,
            run,
            loopId: loop.id,
            mode: loop.mode,
            yieldMs: this.settings.toolYieldMs,
            budgetTokens: this.settings.outputBudgetTokens,
            signal: controller.signal,
          },
          call,
        );
        const fresh = await this.core.repos.runs.findRunById(run.id);
        if (!fresh || fresh.status === RUN.aborted) return "stopped";
        if (outcome.kind === "waiting") {
          // Already waiting (a second look at the same pending proposal): nothing changed, nothing to announce.
          if (fresh.status === RUN.waiting && loop.status === RUN.waiting) return "waiting";
          await this.core.runs.setLoop(loop, RUN.waiting);
          await this.#setStatus(fresh, project, RUN.waiting, "waiting on a proposal", { tool: call.function.name, path: outcome.path });
          return "waiting";
        }
        await this.#addMessage(fresh, loop.id, { role: "tool", tool_call_id: call.id, content: outcome.content });
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
          await this.core.repos.runs.updateRun(run.id, { attributes: JSON.stringify({ ...JSON.parse(fresh.attributes), summary: outcome.summary }) });
          await this.#setStatus(fresh, project, RUN.running, "loop finished", { summary: outcome.summary });
          return "continue";
        }
      }
      return "continue";
    } finally {
      this.#calls.delete(run.id);
    }
  }

  /** Ends the loop as failed with an error entry the client and the model history can show; the next queued loop still runs. */
  async #fail(run: RunRow, project: ProjectRef, loop: LoopRow, message: string): Promise<void> {
    await this.#finishLoop(loop, RUN.failed);
    await this.core.runs.recordError(run, loop, message);
    await this.core.repos.runs.updateRun(run.id, { attributes: JSON.stringify({ ...JSON.parse(run.attributes), error: message }) });
    const more = await this.#openLoop(run.id);
    await this.#setStatus(run, project, more ? RUN.running : RUN.failed, "loop failed", { error: message });
  }
}
