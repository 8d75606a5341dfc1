import type { Kysely } from "kysely";
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
    ])
    .where("run_id", "=", runId)
    .groupBy("turn")
    .orderBy("turn")
    .execute();
  return rows.map((r) => ({ turn: r.turn, promptTokens: Number(r.prompt), completionTokens: Number(r.completion), totalTokens: Number(r.total) }));
}
