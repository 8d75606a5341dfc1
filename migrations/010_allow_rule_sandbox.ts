// An "always allow" rule also records the sandbox mode the command was accepted in, and accepts a later proposal
// only in that mode or a narrower one (read-only < workspace-write < full): a rule set for a sandboxed command does
// not let it run without a sandbox. NULL is a rule stored before this migration: it matches proposals in any mode
// but full. The mode is part of the rule's identity.
import { sql } from "kysely";
import { rebuildAllowRulesOnSqlite } from "./009_allow_rule_runner.js";
import type { SchemaMigration } from "./columns.js";

export const allowRuleSandbox: SchemaMigration = {
  async up(db, dialect) {
    // SQLite cannot change a UNIQUE constraint in place: the table is rebuilt (009).
    if (dialect === "sqlite") return rebuildAllowRulesOnSqlite(db, ["runner", "sandbox"], { runner: "runner", sandbox: "NULL" });
    await db.schema
      .alterTable("allow_rules")
      .addColumn("sandbox", "text", (c) => c.check(sql`sandbox IN ('read-only', 'workspace-write', 'full')`))
      .execute();
    await db.schema.dropIndex("allow_rules_unique").execute();
    await sql`CREATE UNIQUE INDEX allow_rules_unique ON allow_rules (run_id, tool, md5(command), md5(cwd), md5(env), runner, sandbox)`.execute(db);
  },
};
