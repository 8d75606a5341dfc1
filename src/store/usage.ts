import { type Kysely, sql } from "kysely";
import type { Database, NewModelUsage } from "./schema.js";

/** Records the token usage of one model call. */
export async function insertUsage(db: Kysely<Database>, usage: Omit<NewModelUsage, "id" | "created_at">): Promise<void> {
  await db
    .insertInto("model_usage")
    .values({ ...usage, created_at: Date.now() })
    .execute();
}

export interface TurnUsage {
  turn: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** In US dollars, from the price table (0 for a model it does not price). */
  costUsd: number;
}

/** A run's token usage per turn, in turn order (turns whose calls reported none are absent). */
export async function usageByTurn(db: Kysely<Database>, runId: number): Promise<TurnUsage[]> {
  const rows = await db
    .selectFrom("model_usage")
    .select((eb) => [
      "turn",
      eb.fn.sum<number>("prompt_tokens").as("prompt"),
      eb.fn.sum<number>("completion_tokens").as("completion"),
      eb.fn.sum<number>("total_tokens").as("total"),
      eb.fn.sum<number>("cache_read_tokens").as("cacheRead"),
      eb.fn.sum<number>("cache_write_tokens").as("cacheWrite"),
      eb.fn.sum<number>("cost_micro_usd").as("cost"),
    ])
    .where("run_id", "=", runId)
    .groupBy("turn")
    .orderBy("turn")
    .execute();
  return rows.map((r) => ({
    turn: r.turn,
    promptTokens: Number(r.prompt),
    completionTokens: Number(r.completion),
    totalTokens: Number(r.total),
    cacheReadTokens: Number(r.cacheRead),
    cacheWriteTokens: Number(r.cacheWrite),
    costUsd: Number(r.cost) / 1e6,
  }));
}

/** Adds one step's spend to the run's running totals (one row written, whatever the run's length). */
export async function addSpend(db: Kysely<Database>, runId: number, spend: { tokens: number; microUsd: number; ms: number }): Promise<void> {
  await db
    .updateTable("runs")
    .set({
      spent_tokens: sql`spent_tokens + ${spend.tokens}`,
      spent_micro_usd: sql`spent_micro_usd + ${spend.microUsd}`,
      spent_ms: sql`spent_ms + ${spend.ms}`,
    })
    .where("id", "=", runId)
    .execute();
}
