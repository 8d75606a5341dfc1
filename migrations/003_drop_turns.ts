// Turns are a counter on the run (runs.turn) and a column of every entry and message; the table was never written.
// Dropped rather than kept empty.
import type { SchemaMigration } from "./columns.js";

export const dropTurns: SchemaMigration = {
  async up(db) {
    await db.schema.dropTable("turns").execute();
  },
};
