// Token usage the model server reported, one row per model call that reported it (a call is one turn of a run).
// run/get sums them per turn and for the run.
import { id, owner, required, type SchemaMigration, types } from "./columns.js";

export const usage: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    await db.schema
      .createTable("model_usage")
      .addColumn("id", t.big, id(dialect))
      .addColumn("run_id", t.big, owner("runs"))
      .addColumn("loop_id", t.big, owner("loops", false))
      .addColumn("turn", "integer", required)
      .addColumn("model", "text", required) // the model alias the call used
      .addColumn("prompt_tokens", t.big, required)
      .addColumn("completion_tokens", t.big, required)
      .addColumn("total_tokens", t.big, required)
      .addColumn("created_at", t.big, required)
      .execute();
    await db.schema.createIndex("model_usage_by_run").on("model_usage").columns(["run_id", "turn"]).execute();
  },
};
