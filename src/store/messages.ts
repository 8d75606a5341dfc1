import type { Kysely } from "kysely";
import type { Database, MessageRow } from "./schema.js";

/** A run's conversation in order (bodies are the chat-completions message JSON). */
export function listMessages(db: Kysely<Database>, runId: number): Promise<Pick<MessageRow, "body">[]> {
  return db.selectFrom("messages").select("body").where("run_id", "=", runId).orderBy("id").execute();
}

/**
 * What the model is sent of a run's conversation, with ids: all of it, or after a compaction its first message (the
 * system prompt), the summary, and the messages after the last one the summary replaced. Reads the window, not
 * the run's history.
 */
export async function listContext(
  db: Kysely<Database>,
  runId: number,
  compaction: { from: number; after: number },
): Promise<Pick<MessageRow, "id" | "body">[]> {
  const query = db.selectFrom("messages").select(["id", "body"]).where("run_id", "=", runId).orderBy("id");
  if (compaction.from === 0) return query.execute();
  const [first, rest] = await Promise.all([query.limit(1).execute(), query.where("id", ">", compaction.after).execute()]);
  const summary = rest.find((row) => row.id === compaction.from);
  return [...first.filter((row) => row.id <= compaction.after), ...(summary ? [summary] : []), ...rest.filter((row) => row.id !== compaction.from)];
}

export async function insertMessage(
  db: Kysely<Database>,
  message: { run_id: number; loop_id: number | null; turn: number; role: MessageRow["role"]; body: string },
): Promise<number> {
  const row = await db
    .insertInto("messages")
    .values({ ...message, created_at: Date.now() })
    .returning("id")
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

/** Messages of one role in one loop (the agent counts its model steps with it). */
export async function countLoopMessages(db: Kysely<Database>, loopId: number, role: MessageRow["role"]): Promise<number> {
  const row = await db
    .selectFrom("messages")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("loop_id", "=", loopId)
    .where("role", "=", role)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A page of a run's conversation after message id `afterId`, each with the number (seq) of its loop. */
export function listMessagePage(
  db: Kysely<Database>,
  runId: number,
  page: { afterId: number; limit: number },
): Promise<(Pick<MessageRow, "id" | "turn" | "role" | "body" | "created_at"> & { loop: number | null })[]> {
  return db
    .selectFrom("messages")
    .leftJoin("loops", "loops.id", "messages.loop_id")
    .select(["messages.id", "messages.turn", "messages.role", "messages.body", "messages.created_at", "loops.seq as loop"])
    .where("messages.run_id", "=", runId)
    .where("messages.id", ">", page.afterId)
    .orderBy("messages.id")
    .limit(page.limit)
    .execute();
}
