// Runner pools (SPEC §7 "Pools"): accepted commands that wait for a free runner of their pool, in the order they were
// accepted, across every server of the database; what each attached runner says of itself, so a server lists (and a
// proposal records) the runners of the others; and a runner's drain, which outlives its reconnects.
import { id, owner, required, type SchemaMigration, types } from "./columns.js";

export const runnerPools: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    // One row per queued command (its channels at 100): the id is its place in line. A runner that may take it
    // (`admits`: the principals, backends, mode and network it was accepted for) takes it under a database lock, and
    // the row goes in the same transaction as its channels move to 102.
    await db.schema
      .createTable("runner_queue")
      .addColumn("id", t.big, id(dialect))
      .addColumn("producer_id", t.big, (c) => c.notNull().unique().references("entries.id").onDelete("cascade"))
      .addColumn("project_id", t.big, owner("projects"))
      .addColumn("pool", "text", required)
      .addColumn("admits", "text", required)
      .addColumn("queued_at", t.big, required)
      .execute();
    await db.schema.createIndex("runner_queue_by_pool").on("runner_queue").columns(["project_id", "pool", "id"]).execute();

    // What an attached runner said at attach (labels, capacity, backend, sandbox, who attached it, its machine), as JSON.
    await db.schema
      .alterTable("runner_locations")
      .addColumn("info", "text", (c) => c.notNull().defaultTo("{}"))
      .execute();

    // spool runners drain NAME: held with the name, so a runner that reconnects (to any server) still takes nothing new.
    await db.schema
      .alterTable("runner_names")
      .addColumn("draining", "integer", (c) => c.notNull().defaultTo(0))
      .execute();
  },
};
