import { type Kysely, sql } from "kysely";
import { uniquely } from "./errors.js";
import type { Database, NewNotifyOutbox, NewNotifyTarget, NotifyOutboxRow, NotifyTargetRow } from "./schema.js";

/** Stores a target; a name already taken is a UniqueViolation. */
export function insertTarget(db: Kysely<Database>, row: NewNotifyTarget): Promise<NotifyTargetRow> {
  return uniquely("notify_targets", () => db.insertInto("notify_targets").values(row).returningAll().executeTakeFirstOrThrow());
}

export function listTargets(db: Kysely<Database>): Promise<NotifyTargetRow[]> {
  return db.selectFrom("notify_targets").selectAll().orderBy("id").execute();
}

export function findTarget(db: Kysely<Database>, name: string): Promise<NotifyTargetRow | undefined> {
  return db.selectFrom("notify_targets").selectAll().where("name", "=", name).executeTakeFirst();
}

export function findTargetById(db: Kysely<Database>, id: number): Promise<NotifyTargetRow | undefined> {
  return db.selectFrom("notify_targets").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Deletes a target and (cascading) the deliveries it is still owed; the row deleted, or undefined. */
export function deleteTarget(db: Kysely<Database>, name: string): Promise<NotifyTargetRow | undefined> {
  return db.deleteFrom("notify_targets").where("name", "=", name).returningAll().executeTakeFirst();
}

/** Queues deliveries: one statement however many targets. */
export async function enqueue(db: Kysely<Database>, rows: readonly NewNotifyOutbox[]): Promise<void> {
  if (rows.length > 0)
    await db
      .insertInto("notify_outbox")
      .values([...rows])
      .execute();
}

/** Per target: deliveries still owed, and the last error one of them met. */
export async function backlog(db: Kysely<Database>): Promise<Map<number, { pending: number; lastError: string | null }>> {
  const rows = await db
    .selectFrom("notify_outbox")
    .select(["target_id"])
    .select((eb) => [eb.fn.countAll<number>().as("pending"), eb.fn.max("last_error").as("last_error")])
    .groupBy("target_id")
    .execute();
  return new Map(rows.map((r) => [Number(r.target_id), { pending: Number(r.pending), lastError: (r.last_error as string | null) ?? null }]));
}

/**
 * Claims up to `limit` deliveries that are due and nobody holds (but those of `resting` targets), until `until`: on PostgreSQL rows another
 * server is claiming are skipped (FOR UPDATE SKIP LOCKED); SQLite has one writer. The UPDATE checks the claim
 * again, so two servers never hold one row.
 */
export async function claimDue(
  db: Kysely<Database>,
  postgres: boolean,
  now: number,
  until: number,
  limit: number,
  resting: readonly number[] = [],
): Promise<NotifyOutboxRow[]> {
  let due = db.selectFrom("notify_outbox").select("id").where("next_at", "<=", now).where("claimed_until", "<", now);
  // Targets resting after a failure are not tried (their deliveries wait their turn without an attempt).
  if (resting.length > 0) due = due.where("target_id", "not in", [...resting]);
  // Read first: an idle outbox (every poll, on every server) takes no write lock from the appends.
  if ((await due.limit(1).executeTakeFirst()) === undefined) return [];
  due = due.orderBy("next_at").limit(limit);
  if (postgres) due = due.forUpdate().skipLocked();
  return db
    .updateTable("notify_outbox")
    .set({ claimed_until: until, attempts: sql<number>`attempts + 1` })
    .where("id", "in", due)
    .where("claimed_until", "<", now)
    .returningAll()
    .execute();
}

/** The receiver took it: it is owed no more. */
export async function delivered(db: Kysely<Database>, id: number): Promise<void> {
  await db.deleteFrom("notify_outbox").where("id", "=", id).execute();
}

/** An attempt failed: released, to be tried again at `nextAt`. */
export async function retryLater(db: Kysely<Database>, id: number, nextAt: number, error: string): Promise<void> {
  await db.updateTable("notify_outbox").set({ next_at: nextAt, claimed_until: 0, last_error: error }).where("id", "=", id).execute();
}

/** The earliest time a delivery is due (null: none is owed). */
export async function nextDue(db: Kysely<Database>): Promise<number | null> {
  const row = await db
    .selectFrom("notify_outbox")
    .select((eb) => eb.fn.min("next_at").as("next"))
    .executeTakeFirst();
  return row?.next == null ? null : Number(row.next);
}
