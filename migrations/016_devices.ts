// Paired devices (issue 53): a browser signed in with a one-time code is a device credential of its own, kept here so
// it outlives a restart and works on every server sharing the database. Only digests of its two secrets are kept:
// the cookie's (secret_hash) and the page key's (key_hash). `credential` names the credential whose code paired it:
// a principal's token id, or `home:<id>` for the home's token file; the device ends with it. It lives `idle_ms` past
// its last use (last_seen_at), never past `parent_expires_at`, and ends at once when revoked (revoked_at).
import { sql } from "kysely";
import { id, required, type SchemaMigration, types } from "./columns.js";

export const devices: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    await db.schema
      .createTable("devices")
      .addColumn("id", t.big, id(dialect))
      .addColumn("device_id", "text", (c) => c.notNull().unique())
      .addColumn("name", "text", required)
      .addColumn("principal", "text", required)
      .addColumn("role", "text", (c) => c.notNull().check(sql`role IN ('runner', 'viewer', 'agent', 'person', 'admin')`))
      .addColumn("credential", "text", required)
      .addColumn("secret_hash", "text", required)
      .addColumn("key_hash", "text", required)
      .addColumn("created_at", t.big, required)
      .addColumn("created_address", "text")
      .addColumn("last_seen_at", t.big, required)
      .addColumn("last_address", "text")
      .addColumn("idle_ms", t.big, required)
      .addColumn("parent_expires_at", t.big)
      .addColumn("revoked_at", t.big)
      .execute();
    await db.schema.createIndex("devices_principal").on("devices").columns(["principal", "revoked_at"]).execute();
  },
};
