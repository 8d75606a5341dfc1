import type { SandboxModeName } from "../protocol/sandbox.js";
import type { Repositories } from "../store/repositories.js";
import type { AllowRuleRow } from "../store/schema.js";
import type { ResolverOut } from "./deps.js";

/*
 * "Always allow" rules: an accept may store one for the proposal's tool, command, cwd, environment and
 * proposed runner (none named is a value of its own) in its run; a later proposal that matches one exactly
 * is accepted by the server, and nobody is asked. The runner is part of what the person saw, so a rule
 * stored for one runner accepts nothing proposed for another. The sandbox mode is part of it too: a rule
 * made in one mode accepts a later proposal only in that mode or a narrower one (read-only <
 * workspace-write < full), so a rule set for a sandboxed command does not let it run without one when, say,
 * a runner without a sandbox becomes the default. Rules from before modes were recorded match any mode
 * but full.
 */

/** The environment as rules compare it: JSON with sorted keys. */
export function canonicalEnv(env: Record<string, string> | undefined): string {
  return JSON.stringify(Object.fromEntries(Object.entries(env ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

/** What a rule matches on. */
export interface RuleSubject {
  runId: number;
  tool: string;
  command: string;
  cwd: string;
  env: Record<string, string> | undefined;
  /** The runner the proposal named; null: none (the decision picks it). */
  runner: string | null;
  /** The sandbox mode recorded on the proposal (for a rule being stored: the mode it was accepted in). */
  sandbox: SandboxModeName;
}

const key = (s: RuleSubject) => ({
  run_id: s.runId,
  tool: s.tool,
  command: s.command,
  cwd: s.cwd,
  env: canonicalEnv(s.env),
  runner: s.runner ?? "",
  sandbox: s.sandbox,
});

/** The run's rule that accepts this proposal (same key, made in its mode or a wider one), if any. */
export const matchingRule = (repos: Repositories, subject: RuleSubject) => repos.allowRules.findRule(key(subject));

/** Stores the rule an accept asked for (`by`: who asked); the same rule twice is one row. */
export const storeRule = (repos: Repositories, subject: RuleSubject, by: string) => repos.allowRules.insertRule({ ...key(subject), created_by: by });

/** A rule as the resolver of the proposals it accepts. */
export const ruleResolver = (rule: AllowRuleRow): ResolverOut => ({ kind: "rule", connectionId: null, client: rule.created_by, rule: rule.id });

export const describeRule = (rule: AllowRuleRow) => `rule #${rule.id} (always allow, set by ${rule.created_by})`;
