import type { Kysely } from "kysely";
import type { AllowRuleRow, Database } from "./schema.js";

/** Sandbox modes, narrowest first. */
export const RULE_MODES = ["read-only", "workspace-write", "full"] as const;
export type RuleMode = (typeof RULE_MODES)[number];

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

/** Stores a rule made in `sandbox` mode; the same rule stored twice is the one row (returned either way). */
export async function insertRule(db: Kysely<Database>, rule: RuleKey & { sandbox: RuleMode; created_by: string }): Promise<AllowRuleRow> {
  await db
    .insertInto("allow_rules")
    .values({ ...rule, created_at: Date.now() })
    // No conflict target: PostgreSQL's unique index is over hashes of the long columns (an index row has a size limit).
    .onConflict((oc) => oc.doNothing())
    .execute();
  return (await db
    .selectFrom("allow_rules")
    .selectAll()
    .where("run_id", "=", rule.run_id)
    .where("tool", "=", rule.tool)
    .where("command", "=", rule.command)
    .where("cwd", "=", rule.cwd)
    .where("env", "=", rule.env)
    .where("runner", "=", rule.runner)
    .where("sandbox", "=", rule.sandbox)
    .executeTakeFirst())!;
}

/**
 * A rule with exactly this tool, command, directory, environment and proposed runner that was made in
 * `sandbox` mode or a wider one (read-only < workspace-write < full); a rule without a mode (stored before
 * modes were recorded) matches any mode but full. The narrowest such rule, the oldest first.
 */
export async function findRule(db: Kysely<Database>, key: RuleKey & { sandbox: RuleMode }): Promise<AllowRuleRow | undefined> {
  const wider = RULE_MODES.slice(RULE_MODES.indexOf(key.sandbox));
  const rules = await db
    .selectFrom("allow_rules")
    .selectAll()
    .where("run_id", "=", key.run_id)
    .where("tool", "=", key.tool)
    .where("command", "=", key.command)
    .where("cwd", "=", key.cwd)
    .where("env", "=", key.env)
    .where("runner", "=", key.runner)
    .where((eb) => (key.sandbox === "full" ? eb("sandbox", "in", wider) : eb.or([eb("sandbox", "in", wider), eb("sandbox", "is", null)])))
    .orderBy("id")
    .execute();
  const rank = (r: AllowRuleRow) => (r.sandbox === null ? RULE_MODES.indexOf("workspace-write") : RULE_MODES.indexOf(r.sandbox));
  return rules.sort((a, b) => rank(a) - rank(b))[0];
}

/** A run's rules, oldest first. */
export function listRules(db: Kysely<Database>, runId: number): Promise<AllowRuleRow[]> {
  return db.selectFrom("allow_rules").selectAll().where("run_id", "=", runId).orderBy("id").execute();
}
