import type { Kysely } from "kysely";
import type { AllowRuleRow, Database } from "./schema.js";

export interface RuleKey {
  run_id: number;
  tool: string;
  command: string;
  cwd: string;
  /** The environment as JSON with sorted keys. */
  env: string;
  /** The runner the proposal named; "" when it named none. */
  runner: string;
}

/** Stores a rule; the same rule stored twice is the one row (returned either way). */
export async function insertRule(db: Kysely<Database>, rule: RuleKey & { created_by: string }): Promise<AllowRuleRow> {
  await db
    .insertInto("allow_rules")
    .values({ ...rule, created_at: Date.now() })
    // No conflict target: PostgreSQL's unique index is over hashes of the long columns (an index row has a size limit).
    .onConflict((oc) => oc.doNothing())
    .execute();
  return (await findRule(db, rule))!;
}

/** The rule with exactly this tool, command, directory, environment and proposed runner. */
export function findRule(db: Kysely<Database>, key: RuleKey): Promise<AllowRuleRow | undefined> {
  return db
    .selectFrom("allow_rules")
    .selectAll()
    .where("run_id", "=", key.run_id)
    .where("tool", "=", key.tool)
    .where("command", "=", key.command)
    .where("cwd", "=", key.cwd)
    .where("env", "=", key.env)
    .where("runner", "=", key.runner)
    .executeTakeFirst();
}

/** A run's rules, oldest first. */
export function listRules(db: Kysely<Database>, runId: number): Promise<AllowRuleRow[]> {
  return db.selectFrom("allow_rules").selectAll().where("run_id", "=", runId).orderBy("id").execute();
}
