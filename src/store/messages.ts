import type { Kysely } from "kysely";
import type { Database, MessageRow } from "./schema.js";

/** A run's conversation in order (bodies are the chat-completions message JSON). */
export function listMessages(db: Kysely<Database>, runId: number): Promise<Pick<MessageRow, "body">[]> {
  return db.selectFrom("messages").select("body").where("run_id", "=", runId).orderBy("id").execute();
}

export async function insertMessage(
  db: Kysely<Database>,
  message: { run_id: number; loop_id: number | null; turn: number; role: MessageRow["role"]; body: string },
): Promise<void> {
  await db
    .insertInto("messages")
    .values({ ...message, created_at: Date.now() })
    .execute();
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
