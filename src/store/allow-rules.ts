import type { Kysely } from "kysely";
import type { AllowRuleRow, AllowRuleTable, Database } from "./schema.js";

/** The sandbox modes a rule is made in (NULL in the table: a rule from before modes were recorded, which matches nothing now). */
export type RuleMode = "read-only" | "workspace-write" | "full";

/**
 * What makes a rule, besides its mode. `env`: the shown facts without a column of their own (environment, tty,
 * background, time limit) as canonical JSON (src/core/allow-rules.ts); a rule stored before they were compared holds
 * the environment alone, and matches nothing. `runner`: the runner the command goes to (resolved at proposal time).
 */
export type RuleKey = Pick<AllowRuleTable, "run_id" | "tool" | "command" | "cwd" | "env" | "runner">;

/** Stores a rule made in `sandbox` mode; the same rule stored twice is the one row (returned either way). */
export async function insertRule(db: Kysely<Database>, rule: RuleKey & { sandbox: RuleMode; created_by: string }): Promise<AllowRuleRow> {
  await db
    .insertInto("allow_rules")
    .values({ ...rule, created_at: Date.now() })
    // No conflict target: PostgreSQL's unique index is over hashes of the long columns (an index row has a size limit).
    .onConflict((oc) => oc.doNothing())
    .execute();
  // The row stored now, or the one stored before (a rule's key is unique).
  return (await findRule(db, rule))!;
}

/** The oldest rule with exactly this key: every fact of the proposal, its runner and its sandbox mode equal. */
export async function findRule(db: Kysely<Database>, key: RuleKey & { sandbox: RuleMode }): Promise<AllowRuleRow | undefined> {
  return commandRules(db, key)
    .where("cwd", "=", key.cwd)
    .where("env", "=", key.env)
    .where("runner", "=", key.runner)
    .where("sandbox", "=", key.sandbox)
    .executeTakeFirst();
}

/** A run's rules for this tool and command, oldest first: the candidates a proposal's facts are compared with. */
export function rulesForCommand(db: Kysely<Database>, key: Pick<RuleKey, "run_id" | "tool" | "command">): Promise<AllowRuleRow[]> {
  return commandRules(db, key).execute();
}

/** The query of a run's rules for this tool and command, oldest first, for findRule to narrow and rulesForCommand to run. */
function commandRules(db: Kysely<Database>, key: Pick<RuleKey, "run_id" | "tool" | "command">) {
  return db
    .selectFrom("allow_rules")
    .selectAll()
    .where("run_id", "=", key.run_id)
    .where("tool", "=", key.tool)
    .where("command", "=", key.command)
    .orderBy("id");
}

/** A run's rules, oldest first. */
export function listRules(db: Kysely<Database>, runId: number): Promise<AllowRuleRow[]> {
  return db.selectFrom("allow_rules").selectAll().where("run_id", "=", runId).orderBy("id").execute();
}
