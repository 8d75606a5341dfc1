// The agent loop's conversation: one row per chat message, in order per run. A run waiting on a proposal is these
// rows plus the proposal's log entry (its attributes name the tool call), so any connection, or a restarted server,
// can continue it.
import { type SqlBool, sql } from "kysely";
import { id, owner, required, type SchemaMigration, types } from "./columns.js";

export const agent: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    await db.schema
      .createTable("messages")
      .addColumn("id", t.big, id(dialect))
      .addColumn("run_id", t.big, owner("runs"))
      .addColumn("loop_id", t.big, owner("loops", false))
      .addColumn("turn", "integer", required)
      .addColumn("role", "text", (c) => c.notNull().check(sql`role IN ('system', 'user', 'assistant', 'tool')`))
      // The message as the chat-completions API takes it (content, tool_calls, tool_call_id).
      .addColumn("body", "text", required)
      .addColumn("created_at", t.big, required)
      .execute();
    await db.schema.createIndex("messages_by_run").on("messages").columns(["run_id", "id"]).execute();
    await db.schema.createIndex("loops_open").on("loops").columns(["run_id", "status"]).where(sql<SqlBool>`status IN (100, 102, 202)`).execute();
  },
};
