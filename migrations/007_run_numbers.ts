// Runs created without an alias are named run-N with N counted per project (it was the highest run id of all
// projects, which told one project how many runs the others had). The last number given is kept on the project; an
// existing project continues after its highest run id, so no run-N it was given before is given again.
import { sql } from "kysely";
import { type SchemaMigration, types } from "./columns.js";

export const runNumbers: SchemaMigration = {
  async up(db, dialect) {
    await db.schema
      .alterTable("projects")
      .addColumn("last_run_number", types(dialect).big, (c) => c.notNull().defaultTo(0))
      .execute();
    await sql`UPDATE projects SET last_run_number = COALESCE((SELECT MAX(id) FROM runs WHERE runs.project_id = projects.id), 0)`.execute(db);
  },
};
