import type { Kysely } from "kysely";
import type { Database, LoopRow } from "./schema.js";

/** Queues a prompt as the run's next loop (seq = last + 1). */
export async function insertLoop(db: Kysely<Database>, loop: { run_id: number; prompt: string; mode: "ask" | "act"; status: number }): Promise<LoopRow> {
  const last = await db.selectFrom("loops").select("seq").where("run_id", "=", loop.run_id).orderBy("seq", "desc").executeTakeFirst();
  return db
    .insertInto("loops")
    .values({ ...loop, seq: (last?.seq ?? 0) + 1, created_at: Date.now() })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The oldest loop of a run whose status is one of `open`. */
export function firstLoopIn(db: Kysely<Database>, runId: number, open: readonly number[]): Promise<LoopRow | undefined> {
  return db.selectFrom("loops").selectAll().where("run_id", "=", runId).where("status", "in", open).orderBy("seq").executeTakeFirst();
}

export async function countLoopsIn(db: Kysely<Database>, runId: number, statuses: readonly number[]): Promise<number> {
  const row = await db
    .selectFrom("loops")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("run_id", "=", runId)
    .where("status", "in", statuses)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Sets a loop's status; `finished` also stamps finished_at. */
export async function setLoopStatus(db: Kysely<Database>, id: number, status: number, finished = false): Promise<void> {
  await db
    .updateTable("loops")
    .set({ status, ...(finished ? { finished_at: Date.now() } : {}) })
    .where("id", "=", id)
    .execute();
}

/** Ends every loop of a run whose status is in `from` with `status`; returns how many. */
export async function finishLoopsIn(db: Kysely<Database>, runId: number, from: readonly number[], status: number): Promise<number> {
  const result = await db
    .updateTable("loops")
    .set({ status, finished_at: Date.now() })
    .where("run_id", "=", runId)
    .where("status", "in", from)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
