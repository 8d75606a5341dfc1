// Fair shares of pending proposals (SPEC: Limits, "Per principal"): a proposal's log entry names the principal that
// made it (`proposed_by`), and two partial indexes hold only pending proposals (status 202), so the counts a new
// proposal is checked against (its run's, its principal's) are index ranges over what waits, never a scan of the
// entries. Proposals pending at the upgrade have no proposed_by: they count for their run, not for a principal.
// And a receiver's opt-in to env values in its bodies (`include_env_values`, off: names only).
import { type SqlBool, sql } from "kysely";
import type { SchemaMigration } from "./columns.js";

export const pendingShares: SchemaMigration = {
  async up(db) {
    await db.schema.alterTable("entries").addColumn("proposed_by", "text").execute();
    await db.schema.createIndex("entries_pending_by_run").on("entries").column("run_id").where(sql<SqlBool>`status = 202`).execute();
    await db.schema.createIndex("entries_pending_by_principal").on("entries").column("proposed_by").where(sql<SqlBool>`status = 202`).execute();
    await db.schema
      .alterTable("notify_targets")
      .addColumn("include_env_values", "integer", (c) => c.notNull().defaultTo(0))
      .execute();
  },
};
