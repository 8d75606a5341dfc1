import { type Kysely, sql } from "kysely";
import { uniquely } from "./errors.js";
import type { Database, NewNotifyTarget, NotifyDeliveryRow, NotifyTargetRow } from "./schema.js";

/** A delivery claimed for an attempt, with its event. */
export type ClaimedDelivery = NotifyDeliveryRow & { uuid: string; event: string; payload: string };

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

/** Deletes a target, the deliveries it is still owed (cascading) and the events nobody else is owed; the row deleted, or undefined. */
export async function deleteTarget(db: Kysely<Database>, name: string): Promise<NotifyTargetRow | undefined> {
  const row = await db.deleteFrom("notify_targets").where("name", "=", name).returningAll().executeTakeFirst();
  if (row) await dropUnowed(db);
  return row;
}

/** Events no delivery needs any more, after a target's went with it (a scan: removing a target is rare). */
async function dropUnowed(db: Kysely<Database>): Promise<void> {
  await db
    .deleteFrom("notify_events")
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom("notify_deliveries").select("notify_deliveries.id").whereRef("notify_deliveries.event_id", "=", "notify_events.id"))),
    )
    .execute();
}

/** Per target: deliveries still owed, and the last error one of them met. */
export async function backlog(db: Kysely<Database>): Promise<Map<number, { pending: number; lastError: string | null }>> {
  const rows = await db
    .selectFrom("notify_deliveries")
    .select(["target_id"])
    .select((eb) => [eb.fn.countAll<number>().as("pending"), eb.fn.max("last_error").as("last_error")])
    .groupBy("target_id")
    .execute();
  return new Map(rows.map((r) => [Number(r.target_id), { pending: Number(r.pending), lastError: (r.last_error as string | null) ?? null }]));
}

/**
 * Claims up to `limit` deliveries that are due and nobody holds (of `scope.target` alone, or but those of `scope.exclude`), until `until`: on PostgreSQL rows another
 * server is claiming are skipped (FOR UPDATE SKIP LOCKED); SQLite has one writer. The UPDATE checks the claim
 * again, so two servers never hold one row.
 */
export async function claimDue(
  db: Kysely<Database>,
  postgres: boolean,
  now: number,
  until: number,
  limit: number,
  scope: { exclude?: readonly number[]; target?: number } = {},
): Promise<ClaimedDelivery[]> {
  let due = db.selectFrom("notify_deliveries").select("id").where("next_at", "<=", now).where("claimed_until", "<", now);
  // Targets resting after a failure are not tried (their deliveries wait their turn without an attempt), and one
  // being probed is claimed for on its own.
  if (scope.exclude?.length) due = due.where("target_id", "not in", [...scope.exclude]);
  if (scope.target !== undefined) due = due.where("target_id", "=", scope.target);
  // Read first: an idle outbox (every poll, on every server) takes no write lock from the appends.
  if ((await due.limit(1).executeTakeFirst()) === undefined) return [];
  due = due.orderBy("next_at").limit(limit);
  if (postgres) due = due.forUpdate().skipLocked();
  const claimed = await db
    .updateTable("notify_deliveries")
    .set({ claimed_until: until, attempts: sql<number>`attempts + 1` })
    .where("id", "in", due)
    .where("claimed_until", "<", now)
    .returningAll()
    .execute();
  if (claimed.length === 0) return [];
  const events = await db
    .selectFrom("notify_events")
    .select(["id", "uuid", "event", "payload"])
    .where("id", "in", [...new Set(claimed.map((d) => d.event_id))])
    .execute();
  const byId = new Map(events.map((e) => [Number(e.id), e]));
  // An event is deleted only once no delivery needs it, so each claimed one has its own.
  return claimed.flatMap((d) => {
    const event = byId.get(Number(d.event_id));
    return event ? [{ ...d, uuid: event.uuid, event: event.event, payload: event.payload }] : [];
  });
}

/** The receiver took it (or retrying it ended): it is owed no more, and its event goes once nobody is owed it. */
export async function delivered(db: Kysely<Database>, id: number, eventId: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const gone = await trx.deleteFrom("notify_deliveries").where("id", "=", id).executeTakeFirst();
    if (Number(gone.numDeletedRows) === 0) return;
    await trx.updateTable("notify_events").set({ pending: sql<number>`pending - 1` }).where("id", "=", eventId).execute();
    await trx.deleteFrom("notify_events").where("id", "=", eventId).where("pending", "<=", 0).execute();
  });
}

/** An attempt failed: released, to be tried again at `nextAt`. */
export async function retryLater(db: Kysely<Database>, id: number, nextAt: number, error: string): Promise<void> {
  await db.updateTable("notify_deliveries").set({ next_at: nextAt, claimed_until: 0, last_error: error }).where("id", "=", id).execute();
}

/** A delivery reached the target at `at`: it is not failing (any more). */
export async function targetDelivered(db: Kysely<Database>, targetId: number, at: number): Promise<void> {
  await db.updateTable("notify_targets").set({ delivered_at: at, failing_since: null, failure: null }).where("id", "=", targetId).execute();
}

/** An attempt to reach the target failed at `at`: failing since then unless it already was, with this error as its latest. */
export async function targetFailed(db: Kysely<Database>, targetId: number, at: number, error: string): Promise<void> {
  await db
    .updateTable("notify_targets")
    .set({ failing_since: sql<number>`coalesce(failing_since, ${at})`, failure: error })
    .where("id", "=", targetId)
    .execute();
}
