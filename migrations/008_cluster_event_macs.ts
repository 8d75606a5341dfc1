// Rows of cluster_events are authenticated: servers sharing the database act on them (an accept runs a command), so
// a row anyone with access to the database could write must prove it comes from a server holding the token. `seq`
// numbers one server's rows from 1 (a row copied or notified again is not acted on twice); `mac` is the
// HMAC-SHA256, under a key derived from the token, of the server, seq, time and body. Rows are announcements kept a
// few minutes: those of before carry no MAC and are dropped with the table.
import { id, required, type SchemaMigration, types } from "./columns.js";

export const clusterEventMacs: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    await db.schema.dropTable("cluster_events").execute();
    await db.schema
      .createTable("cluster_events")
      .addColumn("id", t.big, id(dialect))
      .addColumn("server_id", t.big, required)
      .addColumn("seq", t.big, required)
      .addColumn("body", "text", required)
      .addColumn("created_at", t.big, required)
      .addColumn("mac", "text", required)
      .execute();
    await db.schema.createIndex("cluster_events_created").on("cluster_events").column("created_at").execute();
  },
};
