import type { Kysely } from "kysely";
import type { Database, NewAudit, NewNotifyEvent } from "./schema.js";

const DELIVERIES_A_STATEMENT = 1000;

/** One event for receivers: its body, and the targets owed it. */
export interface QueuedEvent {
  event: NewNotifyEvent;
  targets: readonly number[];
}

/**
 * What a moment of proposals' lives left for the record (core/activity-writes.ts): audit rows and notification
 * events with their deliveries, in one transaction (one commit for all of them, however many proposals it covers;
 * an event is never stored without the deliveries that need it).
 */
export async function writeActivity(db: Kysely<Database>, audit: readonly NewAudit[], events: readonly QueuedEvent[]): Promise<void> {
  const owed = events.filter((e) => e.targets.length > 0);
  if (audit.length === 0 && owed.length === 0) return;
  // One audit row alone needs no transaction around it.
  if (owed.length === 0 && audit.length === 1) {
    await db.insertInto("audit").values(audit[0]!).execute();
    return;
  }
  await db.transaction().execute(async (trx) => {
    if (audit.length > 0)
      await trx
        .insertInto("audit")
        .values([...audit])
        .execute();
    if (owed.length === 0) return;
    // Every event in one statement, then every delivery in one (rows are matched to their events by uuid: the
    // order RETURNING gives is not promised).
    const ids = await trx
      .insertInto("notify_events")
      .values(owed.map(({ event, targets }) => ({ ...event, pending: targets.length })))
      .returning(["id", "uuid"])
      .execute();
    const idOf = new Map(ids.map((r) => [r.uuid, r.id]));
    const deliveries = owed.flatMap(({ event, targets }) => {
      const at = Number(event.created_at);
      return targets.map((target_id) => ({ target_id, event_id: idOf.get(event.uuid)!, next_at: at, created_at: at }));
    });
    // In statements of at most DELIVERIES_A_STATEMENT rows (4 parameters each: well within both databases' limits).
    for (let i = 0; i < deliveries.length; i += DELIVERIES_A_STATEMENT)
      await trx
        .insertInto("notify_deliveries")
        .values(deliveries.slice(i, i + DELIVERIES_A_STATEMENT))
        .execute();
  });
}
