// Runner names (issue 54): a name belongs to the principal whose credential first attached a runner under it in a
// project, so another credential of the project cannot attach under it once the real runner has left (a squatter
// shown exactly like it, to which a person's `--runner NAME` would send the command and its env).
import { id, owner, required, type SchemaMigration, types } from "./columns.js";

export const runnerNames: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    await db.schema
      .createTable("runner_names")
      .addColumn("id", t.big, id(dialect))
      .addColumn("project_id", t.big, owner("projects"))
      .addColumn("name", "text", required)
      .addColumn("principal", "text", required)
      .addColumn("created_at", t.big, required)
      .execute();
    await db.schema.createIndex("runner_names_by_name").on("runner_names").columns(["project_id", "name"]).unique().execute();
  },
};
