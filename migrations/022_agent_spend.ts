// Runs that outlast their context window, and what a run spends and what it may spend. A compacted run keeps its
// whole conversation; `context_from` is the message holding the summary that replaced everything up to
// `context_after` in the model's requests (0: never compacted), so a turn reads the window it sends, not the run's
// whole history. Messages get an index by loop (the steps a loop took are counted per turn).
//
// What a run spends: Each model call's usage keeps the
// prompt cache's reads and writes and its cost (micro-dollars, an integer on both databases); a run keeps its
// running totals (tokens, cost, seconds of work) so a budget check reads one row, and its budget (JSON; null: none
// of its own). A "seconds" figure counts the time its loops worked, paused time left out.
import { type SchemaMigration, types } from "./columns.js";

export const agentSpend: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    const zero = (c: import("kysely").ColumnDefinitionBuilder) => c.notNull().defaultTo(0);
    await db.schema.alterTable("model_usage").addColumn("cache_read_tokens", t.big, zero).execute();
    await db.schema.alterTable("model_usage").addColumn("cache_write_tokens", t.big, zero).execute();
    await db.schema.alterTable("model_usage").addColumn("cost_micro_usd", t.big, zero).execute();
    await db.schema.alterTable("runs").addColumn("spent_tokens", t.big, zero).execute();
    await db.schema.alterTable("runs").addColumn("spent_micro_usd", t.big, zero).execute();
    await db.schema.alterTable("runs").addColumn("spent_ms", t.big, zero).execute();
    await db.schema.alterTable("runs").addColumn("budget", "text").execute();
    await db.schema.alterTable("runs").addColumn("context_from", t.big, zero).execute();
    await db.schema.alterTable("runs").addColumn("context_after", t.big, zero).execute();
    await db.schema.createIndex("messages_by_loop").on("messages").columns(["loop_id", "role"]).execute();
  },
};
