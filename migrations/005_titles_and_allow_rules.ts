// A run's title: what lists show (editors' session lists, the CLI). Set by run/create, or from the first line of the
// run's first prompt.
//
// "Always allow" rules, per run: a later proposal of the same tool with the identical command, directory and
// environment is accepted by the server itself, and run/resolved names the rule. `env` is the environment as JSON
// with its keys sorted, so equal environments are equal text.
import { sql } from "kysely";
import { id, owner, required, type SchemaMigration, types } from "./columns.js";

export const titlesAndAllowRules: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    await db.schema.alterTable("runs").addColumn("title", "text").execute();
    let table = db.schema
      .createTable("allow_rules")
      .addColumn("id", t.big, id(dialect))
      .addColumn("run_id", t.big, owner("runs"))
      .addColumn("tool", "text", required)
      .addColumn("command", "text", required)
      .addColumn("cwd", "text", required)
      .addColumn("env", "text", required)
      .addColumn("created_by", "text", required) // who asked for the rule (a client's name or a connection)
      .addColumn("created_at", t.big, required);
    if (dialect === "sqlite") table = table.addUniqueConstraint("allow_rules_unique", ["run_id", "tool", "command", "cwd", "env"]);
    await table.execute();
    // PostgreSQL: a B-tree index row holds at most about 2.7 kB and a command may be 64 KiB, so the long texts are
    // unique by their hashes, in an index (a constraint cannot hold expressions).
    if (dialect === "postgres") await sql`CREATE UNIQUE INDEX allow_rules_unique ON allow_rules (run_id, tool, md5(command), md5(cwd), md5(env))`.execute(db);
  },
};
