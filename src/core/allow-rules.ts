import { coversEgress, egressAllowed } from "../protocol/egress.js";
import { HOME_PRINCIPAL_NAME, type PrincipalRef } from "../protocol/roles.js";
import type { ProposalFacts } from "../protocol/views.js";
import type { Repositories } from "../store/repositories.js";
import type { AllowRuleRow } from "../store/schema.js";
import type { ResolverOut } from "./deps.js";

/*
 * "Always allow" rules: an accept may store one in its run for the proposal as everyone was shown it; a
 * later proposal of the run whose every shown fact is equal is accepted by the server, and nobody is asked.
 * The facts are the typed ones every client shows before a decision (src/protocol/proposal-facts.ts): tool,
 * command, cwd, env, tty, background, timeout (an explicit one is not the server default), the sandbox mode and
 * what a sandboxed command sees (its view), the command's network, and the runner the command goes to, resolved
 * (the one a rule-accept would send it to, never "default"). A fact that differs — a tty, background, another
 * time limit, another runner become the default, another sandbox mode or view — is a proposal nobody decided on,
 * so it is asked about.
 */

/** What a rule matches on: the run, the proposal's shown facts, and the runner it goes to. */
export interface RuleSubject {
  runId: number;
  facts: ProposalFacts;
  /** The runner the command goes to: the one it was proposed for, else the one recorded as its default. */
  runner: string;
}

/**
 * The facts with no column of their own, as one canonical JSON text (stored in the rules' `env` column, which
 * held the environment alone before: such rules match nothing now). The environment is sorted by name: the
 * same variables in another order are the same environment.
 */
function otherFacts(facts: ProposalFacts): string {
  const env = [...facts.env].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // A network allowlist's hosts (absent otherwise, so rules of other networks keep their text): sorted, the list the command gets.
  const egress = facts.network === "allowlist" && facts.egress ? egressAllowed(facts.egress).sort() : undefined;
  // What a sandboxed command sees (absent for full and for proposals older than it, so their rules keep their text).
  const view = facts.sandbox.mode !== "unknown" && facts.sandbox.mode !== "full" ? facts.sandbox.view : undefined;
  return JSON.stringify({ env, tty: facts.tty, background: facts.background, timeoutMs: facts.timeoutMs, network: facts.network, egress, view });
}

/** A rule's `env` text without its allowlist, and the allowlist (empty when it has none). */
function splitEgress(text: string): { rest: string; egress: string[] } {
  try {
    const { egress, ...rest } = JSON.parse(text) as { egress?: unknown };
    return { rest: JSON.stringify(rest), egress: Array.isArray(egress) ? egress.filter((x): x is string => typeof x === "string") : [] };
  } catch {
    return { rest: text, egress: [] };
  }
}

function key(s: RuleSubject) {
  if (s.facts.sandbox.mode === "unknown") throw new Error(`a rule cannot hold sandbox mode "${s.facts.sandbox.given}"`);
  return {
    run_id: s.runId,
    tool: s.facts.tool,
    command: s.facts.command,
    cwd: s.facts.cwd ?? "",
    env: otherFacts(s.facts),
    runner: s.runner,
    sandbox: s.facts.sandbox.mode,
  };
}

/**
 * The run's rule that accepts this proposal (every fact equal), if any, among the run's rules for its tool and command
 * (`candidates`). A proposal in network mode allowlist is also accepted by a rule whose list covers its own (the same
 * hosts or more, never fewer): a rule made with list A does not accept the same command asking for A and one host more.
 */
function acceptingRule(candidates: readonly AllowRuleRow[], subject: RuleSubject, k: ReturnType<typeof key>): AllowRuleRow | undefined {
  const exact = candidates.find((rule) => rule.cwd === k.cwd && rule.env === k.env && rule.runner === k.runner && rule.sandbox === k.sandbox);
  if (exact || subject.facts.network !== "allowlist" || !subject.facts.egress) return exact;
  const wanted = egressAllowed(subject.facts.egress);
  const mine = splitEgress(k.env).rest;
  return candidates.find((rule) => {
    if (rule.cwd !== k.cwd || rule.runner !== k.runner || rule.sandbox !== k.sandbox) return false;
    const theirs = splitEgress(rule.env);
    return theirs.rest === mine && coversEgress(theirs.egress, wanted);
  });
}

/** A rule of the run for the same command that did not match, and the facts it differs in (`network: "own" → "shared"`). */
export interface NearRule {
  rule: AllowRuleRow;
  differs: string[];
}

/** The run's rule that accepts this proposal, if any (ruleFor's `rule`). */
export async function matchingRule(repos: Repositories, subject: RuleSubject): Promise<AllowRuleRow | undefined> {
  return (await ruleFor(repos, subject)).rule;
}

/**
 * The run's rule that accepts this proposal, else the rule for the same command that differs in the fewest facts,
 * with those facts: a proposal asked about although the person set a rule for its command says why.
 */
export async function ruleFor(repos: Repositories, subject: RuleSubject): Promise<{ rule?: AllowRuleRow; near?: NearRule }> {
  const wanted = key(subject);
  // One read, of the run's rules for this tool and command (oldest first): the one that accepts it, else the nearest.
  const candidates = await repos.allowRules.rulesForCommand(wanted);
  const rule = acceptingRule(candidates, subject, wanted);
  if (rule) return { rule };
  let near: NearRule | undefined;
  for (const candidate of candidates) {
    const differs = differences(candidate, wanted);
    if (differs.length > 0 && (!near || differs.length < near.differs.length)) near = { rule: candidate, differs };
  }
  return near ? { near } : {};
}

/** The facts in which a stored rule and a proposal's key differ, each as `fact: rule's → proposal's`. */
function differences(rule: AllowRuleRow, wanted: ReturnType<typeof key>): string[] {
  const differs: string[] = [];
  const compare = (fact: string, had: unknown, has: unknown) => {
    const [a, b] = [JSON.stringify(had ?? null), JSON.stringify(has ?? null)];
    if (a !== b) differs.push(`${fact}: ${a} → ${b}`);
  };
  compare("cwd", rule.cwd, wanted.cwd);
  compare("runner", rule.runner, wanted.runner);
  compare("sandbox", rule.sandbox, wanted.sandbox);
  if (rule.env === wanted.env) return differs;
  const other = parsedFacts(rule.env);
  if (!other) differs.push("facts: stored before tty, background, time limit and network were compared");
  else {
    const now = JSON.parse(wanted.env) as Record<string, unknown>;
    for (const fact of ["env", "tty", "background", "timeoutMs", "network", "egress", "view"]) compare(fact, other[fact], now[fact]);
  }
  return differs;
}

function parsedFacts(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Stores the rule an accept asked for (`by`: who asked); the same rule twice is one row. */
export const storeRule = (repos: Repositories, subject: RuleSubject, by: string) => repos.allowRules.insertRule({ ...key(subject), created_by: by });

/** A rule as the resolver of the proposals it accepts. */
export const ruleResolver = (rule: AllowRuleRow): ResolverOut => ({ kind: "rule", connectionId: null, client: rule.created_by, rule: rule.id, how: "rule" });

export const describeRule = (rule: AllowRuleRow) => `rule #${rule.id} (always allow, set by ${rule.created_by})`;

/**
 * The principal that set a rule, as it is now (its name begins `created_by`, `alice via spool-cli`): the home's admin, or a
 * live principal of that name, with its role and scope; undefined when it was revoked, has expired or is unknown. What a
 * rule accepts in sandbox mode full, it accepts as this principal (decide.ts).
 */
export async function ruleSetter(repos: Repositories, rule: AllowRuleRow, now = Date.now()): Promise<PrincipalRef | undefined> {
  const name = rule.created_by.split(" ")[0] ?? "";
  if (name === HOME_PRINCIPAL_NAME) return { name, role: "admin", projects: null };
  const row = await repos.principals.findLivePrincipal(name);
  if (!row || (row.expires_at !== null && row.expires_at <= now)) return undefined;
  return { name: row.name, role: row.role, projects: row.projects === null ? null : (JSON.parse(row.projects) as string[]) };
}
