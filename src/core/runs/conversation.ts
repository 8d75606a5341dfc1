import type { ProjectRef } from "../../rpc/connection-context.js";
import type { MessageRow, NewModelUsage, RunRow } from "../../store/schema.js";
import type { CoreDeps } from "../deps.js";

/**
 * What the agent loop keeps of a run: the run as stored, its project, its conversation (chat-completions message
 * JSON, in order), its turns and the model's token usage. The loop reaches the store through here and the other
 * core services only (src/docs/layers.ts).
 */
export class Conversation {
  constructor(private readonly deps: CoreDeps) {}

  /** The run with this id as it is stored now. */
  run(runId: number): Promise<RunRow | undefined> {
    return this.deps.repos.runs.findRunById(runId);
  }

  /** The project a run belongs to, or undefined once it is gone. */
  async project(run: RunRow): Promise<ProjectRef | undefined> {
    const row = await this.deps.repos.projects.findProjectById(run.project_id);
    return row ? { id: row.id, name: row.name, root: row.root } : undefined;
  }

  /** The run's messages in order, as the bodies were stored. */
  async messages(runId: number): Promise<string[]> {
    return (await this.deps.repos.messages.listMessages(runId)).map((row) => row.body);
  }

  /** What the model is sent of the run's conversation (after a compaction: the system prompt, the summary, what followed), with ids. */
  async context(runId: number): Promise<{ messages: { id: number; body: string }[]; compactedAt: number }> {
    const run = await this.deps.repos.runs.findRunById(runId);
    const compaction = { from: Number(run?.context_from ?? 0), after: Number(run?.context_after ?? 0) };
    const rows = await this.deps.repos.messages.listContext(runId, compaction);
    return { messages: rows.map((r) => ({ id: Number(r.id), body: r.body })), compactedAt: compaction.from };
  }

  /** Appends a message to the run's conversation, under the run's current turn; its id. */
  add(run: RunRow, loopId: number | null, role: MessageRow["role"], body: string): Promise<number> {
    return this.deps.repos.messages.insertMessage({ run_id: run.id, loop_id: loopId, turn: run.turn, role, body });
  }

  /** Stores a compaction: its summary message, which replaces every message up to `after` in the model's requests. */
  async compact(run: RunRow, loopId: number | null, body: string, after: number): Promise<number> {
    const id = await this.add(run, loopId, "user", body);
    await this.deps.repos.runs.updateRun(run.id, { context_from: id, context_after: after });
    return id;
  }

  /** Messages of one role in one loop (the model steps a loop took: "assistant"). */
  count(loopId: number, role: MessageRow["role"]): Promise<number> {
    return this.deps.repos.messages.countLoopMessages(loopId, role);
  }

  /** The run goes on to turn `turn` (each model call after a loop's first is a new turn). */
  setTurn(run: RunRow, turn: number): Promise<void> {
    return this.deps.repos.runs.updateRun(run.id, { turn });
  }

  /** Merges `patch` into the run's stored attributes (`summary`, `error`). */
  annotate(run: RunRow, patch: Record<string, unknown>): Promise<void> {
    return this.deps.repos.runs.updateRun(run.id, { attributes: JSON.stringify({ ...JSON.parse(run.attributes), ...patch }) });
  }

  /** Records the token usage of one model call and adds it to the run's running totals. */
  async usage(usage: Omit<NewModelUsage, "id" | "created_at">, ms: number): Promise<void> {
    await this.deps.repos.usage.insertUsage(usage);
    await this.deps.repos.usage.addSpend(usage.run_id, { tokens: Number(usage.total_tokens), microUsd: Number(usage.cost_micro_usd ?? 0), ms });
  }

  /** Adds time the run worked (no model call reported tokens for it) to its running totals. */
  worked(runId: number, ms: number): Promise<void> {
    return this.deps.repos.usage.addSpend(runId, { tokens: 0, microUsd: 0, ms });
  }
}
