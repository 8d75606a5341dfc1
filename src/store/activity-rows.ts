import type SQLite from "better-sqlite3";
import type { Kysely } from "kysely";
import { storeError } from "./errors.js";
import type { Database, NewAudit, NewNotifyEvent } from "./schema.js";
import { noteActivity, WROTE } from "./sqlite/activity.js";
import { isBusy } from "./sqlite/busy.js";
import { prepareEarly, sqliteOf, statementsFor } from "./sqlite/sync-reads.js";
import type { Store } from "./store.js";

const DELIVERIES_A_STATEMENT = 1000;

/** One event for receivers: its body, and the targets owed it. */
export interface QueuedEvent {
  event: NewNotifyEvent;
  targets: readonly number[];
}

/**
 * What a moment of proposals' lives left for the record (core/activity/writes.ts): audit rows and notification
 * events with their deliveries, in one transaction (one commit for all of them, however many proposals it covers;
 * an event is never stored without the deliveries that need it).
 */
export async function writeActivity(db: Kysely<Database>, audit: readonly NewAudit[], events: readonly QueuedEvent[]): Promise<void> {
  const owed = events.filter((e) => e.targets.length > 0);
  if (audit.length === 0 && owed.length === 0) return;
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

const activityStatements = (sqlite: SQLite.Database) => ({
  audit: sqlite.prepare(
    'INSERT INTO "audit" ("at", "action", "principal", "transport", "client", "project", "run", "path", "detail") VALUES (@at, @action, @principal, @transport, @client, @project, @run, @path, @detail)',
  ),
  event: sqlite.prepare('INSERT INTO "notify_events" ("uuid", "event", "payload", "pending", "created_at") VALUES (?, ?, ?, ?, ?)'),
  delivery: sqlite.prepare('INSERT INTO "notify_deliveries" ("target_id", "event_id", "next_at", "created_at") VALUES (?, ?, ?, ?)'),
});

/**
 * writeActivity on SQLite without Kysely: one synchronous transaction over statements prepared once (no query
 * built per row, nothing waited for). As the synchronous reads do (sqlite/sync-reads.ts), it gives way to Kysely while a
 * transaction of Kysely's is open on the connection, or when the database is busy (Kysely's writes are retried).
 */
export function activityWrites(store: Store) {
  const { db } = store;
  const sqlite = sqliteOf(store);
  prepareEarly(sqlite, activityStatements);
  return {
    writeActivity(audit: readonly NewAudit[], events: readonly QueuedEvent[]): Promise<void> {
      if (!sqlite || sqlite.inTransaction) return writeActivity(db, audit, events);
      // A store closed meanwhile (rows queued as the server stopped): refused like any other write, never thrown.
      if (!sqlite.open) return Promise.reject(storeError(new TypeError("The database connection is not open")));
      const statements = statementsFor(sqlite, activityStatements);
      const write = sqlite.transaction(() => {
        for (const row of audit)
          statements.audit.run({
            at: row.at,
            action: row.action,
            principal: row.principal,
            transport: row.transport ?? null,
            client: row.client ?? null,
            project: row.project ?? null,
            run: row.run ?? null,
            path: row.path ?? null,
            detail: row.detail ?? "{}",
          });
        for (const { event, targets } of events) {
          if (targets.length === 0) continue;
          const id = statements.event.run(event.uuid, event.event, event.payload, targets.length, event.created_at).lastInsertRowid;
          for (const target of targets) statements.delivery.run(target, id, event.created_at, event.created_at);
        }
      });
      noteActivity(sqlite, WROTE);
      try {
        write.immediate();
      } catch (error) {
        if (isBusy(error)) return writeActivity(db, audit, events);
        return Promise.reject(storeError(error));
      }
      return Promise.resolve();
    },
  };
}
