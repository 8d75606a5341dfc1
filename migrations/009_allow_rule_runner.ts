// An "always allow" rule also matches on the runner the proposal named: the runner is shown before the decision, so
// a rule set for commands proposed for one runner does not accept them proposed for another. '' is a proposal that
// named no runner (the decision picks it), which every rule stored before this migration was.
import { type CreateTableBuilder, type Kysely, sql } from "kysely";
import { id, owner, required, type SchemaMigration, types } from "./columns.js";

/**
 * SQLite cannot change a UNIQUE constraint in place, so 009 and 010 rebuild allow_rules: a new table with the rule's
 * new key (runner, and from 010 sandbox), the rows copied (`copy` names the new columns' values for the old rows),
 * the old table dropped and the new one renamed. Only SQLite runs it.
 */
// biome-ignore lint/suspicious/noExplicitAny: the database as it is at this point of its history
export async function rebuildAllowRulesOnSqlite(db: Kysely<any>, key: string[], copy: Record<string, string>): Promise<void> {
  const t = types("sqlite");
  // Its columns typed as any name: which are there depends on `key`.
  let table: CreateTableBuilder<"allow_rules_new", string> = db.schema
    .createTable("allow_rules_new")
    .addColumn("id", t.big, id("sqlite"))
    .addColumn("run_id", t.big, owner("runs"))
    .addColumn("tool", "text", required)
    .addColumn("command", "text", required)
    .addColumn("cwd", "text", required)
    .addColumn("env", "text", required)
    .addColumn("runner", "text", (c) => c.notNull().defaultTo(""));
  if (key.includes("sandbox")) table = table.addColumn("sandbox", "text", (c) => c.check(sql`sandbox IN ('read-only', 'workspace-write', 'full')`));
  await table
    .addColumn("created_by", "text", required)
    .addColumn("created_at", t.big, required)
    .addUniqueConstraint("allow_rules_unique", ["run_id", "tool", "command", "cwd", "env", ...key])
    .execute();
  const kept = ["id", "run_id", "tool", "command", "cwd", "env", "created_by", "created_at"];
  const columns = [...kept, ...Object.keys(copy)];
  const values = [...kept, ...Object.values(copy)];
  await sql`INSERT INTO allow_rules_new (${sql.raw(columns.join(", "))}) SELECT ${sql.raw(values.join(", "))} FROM allow_rules`.execute(db);
  await db.schema.dropTable("allow_rules").execute();
  await db.schema.alterTable("allow_rules_new").renameTo("allow_rules").execute();
}

export const allowRuleRunner: SchemaMigration = {
  async up(db, dialect) {
    if (dialect === "sqlite") return rebuildAllowRulesOnSqlite(db, ["runner"], { runner: "''" });
    // PostgreSQL adds the column and remakes the index of hashes (005).
    await db.schema
      .alterTable("allow_rules")
      .addColumn("runner", "text", (c) => c.notNull().defaultTo(""))
      .execute();
    await db.schema.dropIndex("allow_rules_unique").execute();
    await sql`CREATE UNIQUE INDEX allow_rules_unique ON allow_rules (run_id, tool, md5(command), md5(cwd), md5(env), runner)`.execute(db);
  },
};
