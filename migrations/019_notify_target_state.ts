// A receiver's state, kept with it so `spool notify list` and `spool doctor` can say how it is doing after a restart
// and on every server sharing the database: when a delivery last reached it, and since when it has been failing
// (null: it is not), with the error of its latest failed attempt.

import type { SchemaMigration } from "./columns.js";
import { types } from "./columns.js";

export const notifyTargetState: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    await db.schema.alterTable("notify_targets").addColumn("delivered_at", t.big).execute();
    await db.schema.alterTable("notify_targets").addColumn("failing_since", t.big).execute();
    await db.schema.alterTable("notify_targets").addColumn("failure", "text").execute();
  },
};
