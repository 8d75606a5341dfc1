// Fair shares' counts kept, not counted (issue 55): the number of proposals waiting (status 202) per run and per
// principal, in a table the database itself keeps right (triggers on entries, in the same transaction as the insert,
// the decision or the delete that changes it), so a new proposal's check reads two rows instead of walking up to a
// bound's worth of index entries. A row lives while its count is above 0: the table holds a row per run and per
// principal that has a proposal waiting, no more. The two partial indexes of migration 017 served only those counts.
import { sql } from "kysely";
import type { SchemaMigration } from "./columns.js";

/** A count going up by one for the entry `row` (NEW or OLD) names: its run's, and its principal's when it has one. */
function sqliteUp(row: "NEW" | "OLD"): string {
  return `INSERT INTO pending_counts (scope, key, n) VALUES ('run', CAST(${row}.run_id AS TEXT), 1) ON CONFLICT (scope, key) DO UPDATE SET n = n + 1;
    INSERT INTO pending_counts (scope, key, n) SELECT 'principal', ${row}.proposed_by, 1 WHERE ${row}.proposed_by IS NOT NULL ON CONFLICT (scope, key) DO UPDATE SET n = n + 1;`;
}

/** The same counts going down by one, and a row at 0 removed. */
function sqliteDown(row: "NEW" | "OLD"): string {
  return `UPDATE pending_counts SET n = n - 1 WHERE scope = 'run' AND key = CAST(${row}.run_id AS TEXT);
    DELETE FROM pending_counts WHERE scope = 'run' AND key = CAST(${row}.run_id AS TEXT) AND n <= 0;
    UPDATE pending_counts SET n = n - 1 WHERE scope = 'principal' AND key = ${row}.proposed_by;
    DELETE FROM pending_counts WHERE scope = 'principal' AND key = ${row}.proposed_by AND n <= 0;`;
}

/** An update that leaves the entry counted where it was (still waiting, same run, same principal). */
const SAME = "NEW.status = 202 AND OLD.status = 202 AND NEW.run_id = OLD.run_id AND NEW.proposed_by IS OLD.proposed_by";

const PG_FUNCTION = `CREATE FUNCTION spool_pending_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE same boolean := false;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    same := NEW.status = 202 AND OLD.status = 202 AND NEW.run_id = OLD.run_id AND NEW.proposed_by IS NOT DISTINCT FROM OLD.proposed_by;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') AND NOT same THEN
    IF OLD.status = 202 THEN
      UPDATE pending_counts SET n = n - 1 WHERE scope = 'run' AND key = OLD.run_id::text;
      DELETE FROM pending_counts WHERE scope = 'run' AND key = OLD.run_id::text AND n <= 0;
      IF OLD.proposed_by IS NOT NULL THEN
        UPDATE pending_counts SET n = n - 1 WHERE scope = 'principal' AND key = OLD.proposed_by;
        DELETE FROM pending_counts WHERE scope = 'principal' AND key = OLD.proposed_by AND n <= 0;
      END IF;
    END IF;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NOT same THEN
    IF NEW.status = 202 THEN
      INSERT INTO pending_counts (scope, key, n) VALUES ('run', NEW.run_id::text, 1) ON CONFLICT (scope, key) DO UPDATE SET n = pending_counts.n + 1;
      IF NEW.proposed_by IS NOT NULL THEN
        INSERT INTO pending_counts (scope, key, n) VALUES ('principal', NEW.proposed_by, 1) ON CONFLICT (scope, key) DO UPDATE SET n = pending_counts.n + 1;
      END IF;
    END IF;
  END IF;
  RETURN NULL;
END $$`;

export const pendingCounts: SchemaMigration = {
  async up(db, dialect) {
    await db.schema
      .createTable("pending_counts")
      // 'run' (key: the run's id) or 'principal' (key: its name).
      .addColumn("scope", "text", (c) => c.notNull())
      .addColumn("key", "text", (c) => c.notNull())
      .addColumn("n", "integer", (c) => c.notNull())
      .addPrimaryKeyConstraint("pending_counts_pk", ["scope", "key"])
      .$call((t) => (dialect === "sqlite" ? t.modifyEnd(sql`WITHOUT ROWID`) : t))
      .execute();
    // What waits at the upgrade (proposals from before migration 017 have no principal: they count for their run).
    await sql`INSERT INTO pending_counts (scope, key, n) SELECT 'run', CAST(run_id AS TEXT), count(*) FROM entries WHERE status = 202 GROUP BY run_id`.execute(
      db,
    );
    await sql`INSERT INTO pending_counts (scope, key, n) SELECT 'principal', proposed_by, count(*) FROM entries WHERE status = 202 AND proposed_by IS NOT NULL GROUP BY proposed_by`.execute(
      db,
    );
    // The two dialects spell triggers differently (as migration 014's).
    if (dialect === "postgres") {
      await sql.raw(PG_FUNCTION).execute(db);
      await sql`CREATE TRIGGER pending_counts AFTER INSERT OR UPDATE OF status, run_id, proposed_by OR DELETE ON entries FOR EACH ROW EXECUTE FUNCTION spool_pending_counts()`.execute(
        db,
      );
    } else {
      await sql.raw(`CREATE TRIGGER pending_counts_insert AFTER INSERT ON entries WHEN NEW.status = 202 BEGIN ${sqliteUp("NEW")} END`).execute(db);
      await sql
        .raw(
          `CREATE TRIGGER pending_counts_leave AFTER UPDATE OF status, run_id, proposed_by ON entries WHEN OLD.status = 202 AND NOT (${SAME}) BEGIN ${sqliteDown("OLD")} END`,
        )
        .execute(db);
      await sql
        .raw(
          `CREATE TRIGGER pending_counts_enter AFTER UPDATE OF status, run_id, proposed_by ON entries WHEN NEW.status = 202 AND NOT (${SAME}) BEGIN ${sqliteUp("NEW")} END`,
        )
        .execute(db);
      await sql.raw(`CREATE TRIGGER pending_counts_delete AFTER DELETE ON entries WHEN OLD.status = 202 BEGIN ${sqliteDown("OLD")} END`).execute(db);
    }
    await db.schema.dropIndex("entries_pending_by_run").execute();
    await db.schema.dropIndex("entries_pending_by_principal").execute();
  },
};
