// Notifications, each event's body stored once (issue 46: a proposal with receivers configured costs no more than
// one without). notify_events: what happened, as the json body every receiver gets (without its delivery id), and a
// random uuid the delivery ids are made from. notify_deliveries: one row per receiver still owed an event — small,
// so four receivers cost four short rows, not four copies of the body. Deliveries still owed at the upgrade move
// over with the delivery id they were sent with (`delivery`; null for new rows, whose id is derived from the
// event's uuid and the target). An event goes once no delivery needs it: `pending` counts the deliveries still
// owed (a count, not an index on event_id, so queuing writes one index fewer).
import { sql } from "kysely";
import { id, owner, required, retried, type SchemaMigration, types } from "./columns.js";

export const notifyEvents: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    await db.schema
      .createTable("notify_events")
      .addColumn("id", t.big, id(dialect))
      .addColumn("uuid", "text", required)
      .addColumn("event", "text", required)
      .addColumn("payload", "text", required)
      .addColumn("pending", "integer", required)
      .addColumn("created_at", t.big, required)
      .execute();

    await db.schema
      .createTable("notify_deliveries")
      .addColumn("id", t.big, id(dialect))
      .addColumn("target_id", t.big, owner("notify_targets"))
      // No foreign key: deleting an event would look for its deliveries without an index (it goes once none is left).
      .addColumn("event_id", t.big, required)
      .addColumn("delivery", "text")
      .$call((table) => retried(table, dialect))
      .execute();
    await db.schema.createIndex("notify_deliveries_due").on("notify_deliveries").column("next_at").execute();

    // What was still owed: one event per old row (each carried its own copy of the body), keeping its delivery id.
    await sql`INSERT INTO notify_events (uuid, event, payload, pending, created_at) SELECT delivery, event, payload, 1, created_at FROM notify_outbox`.execute(
      db,
    );
    await sql`INSERT INTO notify_deliveries (target_id, event_id, delivery, attempts, next_at, claimed_until, last_error, created_at)
      SELECT o.target_id, e.id, o.delivery, o.attempts, o.next_at, o.claimed_until, o.last_error, o.created_at
      FROM notify_outbox o JOIN notify_events e ON e.uuid = o.delivery`.execute(db);
    await db.schema.dropTable("notify_outbox").execute();
  },
};
