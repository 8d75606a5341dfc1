// Core tables: projects, runs, loops, turns, entries and the chunks of streamed entries.
// Times are milliseconds since the Unix epoch.
import { type SqlBool, sql } from "kysely";
import { id, owner, required, type SchemaMigration, types } from "./columns.js";

export const core: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    await db.schema
      .createTable("projects")
      .addColumn("id", t.big, id(dialect))
      .addColumn("name", "text", (c) => c.notNull().unique())
      .addColumn("root", "text", required)
      .addColumn("created_at", t.big, required)
      .execute();

    await db.schema
      .createTable("runs")
      .addColumn("id", t.big, id(dialect))
      .addColumn("project_id", t.big, owner("projects"))
      .addColumn("alias", "text", required)
      .addColumn("model", "text")
      .addColumn("mode", "text", (c) => c.notNull().defaultTo("act").check(sql`mode IN ('ask', 'act')`))
      .addColumn("status", "integer", required)
      .addColumn("turn", "integer", (c) => c.notNull().defaultTo(1))
      .addColumn("attributes", "text", (c) => c.notNull().defaultTo("{}"))
      .addColumn("created_at", t.big, required)
      .addColumn("updated_at", t.big, required)
      // Named as PostgreSQL names an unnamed UNIQUE, so databases made before these migrations were TypeScript match.
      .addUniqueConstraint("runs_project_id_alias_key", ["project_id", "alias"])
      .execute();

    await db.schema
      .createTable("loops")
      .addColumn("id", t.big, id(dialect))
      .addColumn("run_id", t.big, owner("runs"))
      .addColumn("seq", "integer", required)
      .addColumn("prompt", "text", required)
      .addColumn("mode", "text", (c) => c.notNull().check(sql`mode IN ('ask', 'act')`))
      .addColumn("status", "integer", required)
      .addColumn("created_at", t.big, required)
      .addColumn("finished_at", t.big)
      .addUniqueConstraint("loops_run_id_seq_key", ["run_id", "seq"])
      .execute();

    // Dropped by 003_drop_turns.
    await db.schema
      .createTable("turns")
      .addColumn("id", t.big, id(dialect))
      .addColumn("run_id", t.big, owner("runs"))
      .addColumn("loop_id", t.big, owner("loops", false))
      .addColumn("seq", "integer", required)
      .addColumn("status", "integer", required)
      .addColumn("created_at", t.big, required)
      .addUniqueConstraint("turns_run_id_seq_key", ["run_id", "seq"])
      .execute();

    // An entry's body lives either in `body` (small, written whole: log entries) or, when `streamed` = 1, in
    // `chunks`; the counters describe streamed bodies so tails and slices never scan the stream.
    await db.schema
      .createTable("entries")
      .addColumn("id", t.big, id(dialect))
      .addColumn("run_id", t.big, owner("runs"))
      .addColumn("path", "text", required)
      .addColumn("scheme", "text", required)
      .addColumn("turn", "integer", required)
      .addColumn("status", "integer", required)
      .addColumn("attributes", "text", (c) => c.notNull().defaultTo("{}"))
      .addColumn("body", "text", (c) => c.notNull().defaultTo(""))
      .addColumn("streamed", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("producer_id", t.big, owner("entries", false))
      .addColumn("channel", "integer")
      .addColumn("bytes", t.big, (c) => c.notNull().defaultTo(0))
      .addColumn("newlines", t.big, (c) => c.notNull().defaultTo(0))
      .addColumn("ends_with_newline", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("last_seq", t.big, (c) => c.notNull().defaultTo(0))
      .addColumn("created_at", t.big, required)
      .addColumn("updated_at", t.big, required)
      .addUniqueConstraint("entries_run_id_path_key", ["run_id", "path"])
      .execute();
    await db.schema.createIndex("entries_by_producer").on("entries").columns(["producer_id", "channel"]).execute();
    await db.schema.createIndex("entries_open").on("entries").column("status").where(sql<SqlBool>`status IN (102, 202)`).execute();

    await db.schema
      .createTable("chunks")
      .addColumn("id", t.big, id(dialect))
      .addColumn("entry_id", t.big, owner("entries"))
      .addColumn("seq", t.big, required)
      .addColumn("byte_offset", t.big, required) // bytes of the entry before this chunk
      .addColumn("line_offset", t.big, required) // newlines of the entry before this chunk
      .addColumn("newlines", t.big, required)
      .addColumn("data", t.bytes, required)
      .addUniqueConstraint("chunks_entry_id_seq_key", ["entry_id", "seq"])
      .execute();
    await db.schema.createIndex("chunks_by_line").on("chunks").columns(["entry_id", "line_offset", "seq"]).execute();
    await db.schema.createIndex("chunks_by_byte").on("chunks").columns(["entry_id", "byte_offset"]).execute();
  },
};
