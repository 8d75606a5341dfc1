// Notifications and the audit trail (issue 46). notify_targets: where an admin asked to be told of proposals
// (`spool notify add`), with the secret each delivery is signed with. notify_outbox: one row per delivery still
// owed, written in the same breath as the change it announces and deleted once the receiver took it (or a day
// of retries passed): servers sharing the database claim rows with a lease (claimed_until), so each is sent by
// one of them at a time. audit: one row per act worth answering for; append-only, which triggers enforce.
import { sql } from "kysely";
import { id, owner, required, retried, type SchemaMigration, types } from "./columns.js";

export const notifyAndAudit: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    await db.schema
      .createTable("notify_targets")
      .addColumn("id", t.big, id(dialect))
      .addColumn("name", "text", (c) => c.notNull().unique())
      .addColumn("url", "text", required)
      .addColumn("secret", "text", required)
      // JSON arrays: the events it gets; the projects it is told of (null: every project).
      .addColumn("events", "text", required)
      .addColumn("format", "text", (c) => c.notNull().check(sql`format IN ('json', 'slack', 'ntfy')`))
      .addColumn("projects", "text")
      .addColumn("created_by", "text", required)
      .addColumn("created_at", t.big, required)
      .execute();

    await db.schema
      .createTable("notify_outbox")
      .addColumn("id", t.big, id(dialect))
      .addColumn("target_id", t.big, owner("notify_targets"))
      // The X-Spool-Delivery header: the same on every attempt.
      .addColumn("delivery", "text", (c) => c.notNull().unique())
      .addColumn("event", "text", required)
      // The json body (every format is rendered from it, the same bytes each attempt).
      .addColumn("payload", "text", required)
      .$call((table) => retried(table, dialect))
      .execute();
    await db.schema.createIndex("notify_outbox_due").on("notify_outbox").column("next_at").execute();
    await db.schema.createIndex("notify_outbox_target").on("notify_outbox").column("target_id").execute();

    await db.schema
      .createTable("audit")
      .addColumn("id", t.big, id(dialect))
      .addColumn("at", t.big, required)
      .addColumn("action", "text", required)
      .addColumn("principal", "text", required)
      .addColumn("client", "text")
      .addColumn("project", "text")
      .addColumn("run", "text")
      .addColumn("path", "text")
      // JSON object: what else the act names (reason, outcome, target, role…).
      .addColumn("detail", "text", (c) => c.notNull().defaultTo("{}"))
      .execute();
    await db.schema.createIndex("audit_at").on("audit").column("at").execute();

    // Nothing updates or deletes an audit row: the database refuses it (the two dialects spell triggers differently).
    if (dialect === "postgres") {
      await sql`CREATE FUNCTION spool_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the audit table is append-only'; END $$`.execute(
        db,
      );
      await sql`CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION spool_audit_append_only()`.execute(db);
    } else {
      await sql`CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END`.execute(db);
      await sql`CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END`.execute(db);
    }
  },
};
