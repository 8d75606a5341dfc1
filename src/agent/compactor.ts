import type { Core } from "../core/index.js";
import type { LoopRow, RunRow } from "../core/views.js";
import type { Logger } from "../logger.js";
import { byPrefix, CONTEXT_WINDOWS, costMicroUsd } from "../model/catalog.js";
import type { ChatResponse, ToolSpec } from "../model/provider.js";
import type { ProjectRef } from "../rpc/connection-context.js";
import { cutPoint, estimateTokens, type Held, SUMMARY_INSTRUCTIONS, summaryText, transcript } from "./compaction.js";
import { type Stored, toWire } from "./stored.js";
import type { ModelTarget } from "./target.js";

/**
 * The model calls around the loop's own: a compaction's summary, and what every call spent (usage, cost, time) in
 * the run's totals. `calls` is the driver's map of the model call in flight per run, so that run/abort stops a
 * summary as it stops a turn.
 */
export class Compactor {
  constructor(
    private readonly core: Core,
    private readonly log: Logger,
    private readonly calls: Map<number, AbortController>,
    private readonly tools: (loop: LoopRow) => ToolSpec[],
  ) {}

  /** The model's context window: config, else its provider's model list, else the table of known ids; undefined when none says. */
  async window(target: ModelTarget): Promise<number | undefined> {
    if (target.contextTokens !== undefined) return target.contextTokens ?? undefined;
    let listed: number | undefined;
    try {
      listed = await target.provider.contextWindow?.(target.model, AbortSignal.timeout(10_000));
    } catch (error) {
      this.log.warn(
        `model ${target.alias}: its provider's model list did not say its context window (${error instanceof Error ? error.message : String(error)})`,
      );
    }
    target.contextTokens = listed ?? byPrefix(CONTEXT_WINDOWS, target.model) ?? null;
    return target.contextTokens ?? undefined;
  }

  /**
   * Compacts the conversation: the model summarises the messages before the cut (streamed to clients as
   * `run/compaction`), and the summary replaces them in later requests; they stay stored. False when there was
   * nothing to summarise or the summary failed (the caller goes on as it would have).
   */
  async compact(
    run: RunRow,
    project: ProjectRef,
    loop: LoopRow,
    target: ModelTarget,
    held: (Held & { message: Stored })[],
    window: number,
    reason: "window" | "too long",
  ): Promise<boolean> {
    const cut = cutPoint(held, window);
    if (cut === undefined || cut < 2) return false;
    const older = held.slice(1, cut);
    const tokensBefore = estimateTokens(toWire(held.map((h) => h.message)), this.tools(loop));
    const id = `compaction-${held.at(-1)!.id}`;
    const notice = { run: run.alias, loop: loop.seq, turn: run.turn, id, reason };
    this.core.runs.compaction(project, { ...notice, phase: "started", tokensBefore });
    const controller = new AbortController();
    this.calls.set(run.id, controller);
    const started = Date.now();
    try {
      const response = await target.provider.chat(
        {
          model: target.model,
          messages: [
            { role: "system", content: SUMMARY_INSTRUCTIONS },
            { role: "user", content: transcript(toWire(older.map((h) => h.message)), window) },
          ],
          tools: [],
          cacheKey: `spool-run-${run.id}-summary`,
        },
        { signal: controller.signal, onText: (delta) => this.core.runs.compaction(project, { ...notice, phase: "chunk", delta }) },
      );
      if (!response.content.trim()) throw new Error("the model's summary was empty");
      await this.spent(run, loop, target, response, Date.now() - started);
      const content = summaryText(response.content, older.length);
      const kept = held.slice(cut).map((h) => h.message);
      const tokensAfter = estimateTokens(toWire([held[0]!.message, { role: "user", content }, ...kept]), this.tools(loop));
      const summary: Stored = {
        role: "user",
        content,
        spool: { note: "compaction", compaction: { id, reason, replaced: older.length, tokensBefore, tokensAfter } },
      };
      await this.core.conversation.compact(run, loop.id, JSON.stringify(summary), held[cut]!.id - 1);
      this.core.runs.compaction(project, { ...notice, phase: "completed", summary: response.content, replaced: older.length, tokensBefore, tokensAfter });
      return true;
    } catch (error) {
      if (controller.signal.aborted) return false;
      await this.core.conversation.worked(run.id, Date.now() - started);
      const message = error instanceof Error ? error.message : String(error);
      this.log.warn(`run ${run.alias}: compacting its conversation failed: ${message}`);
      this.core.runs.compaction(project, { ...notice, phase: "failed", error: message });
      return false;
    } finally {
      this.calls.delete(run.id);
    }
  }

  /** Records a model call's usage (tokens, cost) and time in the run's totals. */
  async spent(run: RunRow, loop: LoopRow, target: ModelTarget, response: ChatResponse, ms: number): Promise<void> {
    const u = response.usage;
    if (!u) return this.core.conversation.worked(run.id, ms);
    await this.core.conversation.usage(
      {
        run_id: run.id,
        loop_id: loop.id,
        turn: run.turn,
        model: target.alias,
        prompt_tokens: u.promptTokens,
        completion_tokens: u.completionTokens,
        total_tokens: u.totalTokens,
        cache_read_tokens: u.cacheReadTokens ?? 0,
        cache_write_tokens: u.cacheWriteTokens ?? 0,
        cost_micro_usd: costMicroUsd(u, byPrefix(this.core.config.agent.prices, target.model)),
      },
      ms,
    );
  }
}
