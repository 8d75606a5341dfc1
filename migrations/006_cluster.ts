// Several servers over one database (with SQLite there is only ever one, and these tables hold its own rows).
// Which servers are alive is decided by the database (PostgreSQL: an advisory lock each server holds on a
// connection of its own; SQLite: only the server that has the file open), never by a heartbeat written here.
import { id, owner, required, type SchemaMigration, types } from "./columns.js";

export const cluster: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    // One row per server start; its id names the server in the tables below.
    await db.schema
      .createTable("servers")
      .addColumn("id", t.big, id(dialect))
      .addColumn("url", "text", required)
      .addColumn("host", "text", required)
      .addColumn("pid", t.big, required)
      .addColumn("started_at", t.big, required)
      .execute();

    // The server whose connection owns each running producer (the live half of ownership is that connection; this
    // row tells the other servers where it is, and who takes its producers over when that server dies).
    await db.schema
      .createTable("producer_owners")
      .addColumn("producer_id", t.big, (c) => c.primaryKey().references("entries.id").onDelete("cascade"))
      .addColumn("server_id", t.big, required)
      .addColumn("since", t.big, required)
      .execute();
    await db.schema.createIndex("producer_owners_server").on("producer_owners").column("server_id").execute();

    // The server driving a run's agent loop right now (at most one).
    await db.schema
      .createTable("run_leases")
      .addColumn("run_id", t.big, (c) => c.primaryKey().references("runs.id").onDelete("cascade"))
      .addColumn("server_id", t.big, required)
      .addColumn("since", t.big, required)
      .execute();

    // Which server each attached runner is connected to, so a proposal accepted on one server is dispatched through
    // the server its runner is on, and one name (or the default) is not taken twice. Embedded runners are not
    // listed: each server has its own.
    await db.schema
      .createTable("runner_locations")
      .addColumn("project_id", t.big, owner("projects"))
      .addColumn("name", "text", required)
      .addColumn("server_id", t.big, required)
      .addColumn("is_default", "integer", required)
      .addColumn("since", t.big, required)
      .addPrimaryKeyConstraint("runner_locations_pkey", ["project_id", "name"])
      .execute();

    // Announcements one server makes to the others (PostgreSQL's NOTIFY carries only the id); kept a few minutes,
    // then pruned. Remade by 008_cluster_event_macs.
    await db.schema
      .createTable("cluster_events")
      .addColumn("id", t.big, id(dialect))
      .addColumn("server_id", t.big, required)
      .addColumn("body", "text", required)
      .addColumn("created_at", t.big, required)
      .execute();
    await db.schema.createIndex("cluster_events_created").on("cluster_events").column("created_at").execute();
  },
};
