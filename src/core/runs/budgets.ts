import type { z } from "zod";
import type { Budget, BudgetReached, Spend } from "../../protocol/views-schemas.js";
import type { RunRow } from "../../store/schema.js";
import type { CoreDeps } from "../deps.js";
import { ENTRY } from "../status.js";

type BudgetOut = z.output<typeof Budget>;
type Kind = keyof BudgetOut;
const KINDS: readonly Kind[] = ["tokens", "costUsd", "seconds", "commands"];

/**
 * Where a run's budget is checked: before a model call (tokens, cost, seconds: a call's spend is known only once it
 * answered, so a run may pass these by its last call), and before the model's command is proposed (all four; a
 * command counts from its proposal, so one reply proposing several commands never runs past `commands`).
 */
export type BudgetCheck = "model call" | "proposal";

const CHECKED: Record<BudgetCheck, readonly Kind[]> = {
  "model call": ["tokens", "costUsd", "seconds"],
  proposal: KINDS,
};

/** The step a paused run stopped before (its attributes' `pausedBefore`; a run paused before it was kept: a model call). */
export function pausedBefore(run: Pick<RunRow, "attributes">): BudgetCheck {
  return (JSON.parse(run.attributes) as { pausedBefore?: BudgetCheck }).pausedBefore === "proposal" ? "proposal" : "model call";
}

/** A budget stored as JSON (runs.budget), or null. */
export function parseBudget(text: string | null | undefined): BudgetOut | null {
  if (!text) return null;
  const value = JSON.parse(text) as BudgetOut;
  return Object.keys(value).length > 0 ? value : null;
}

/**
 * What runs may spend, and what they spent: a run's budget is, limit by limit, its own, else the smallest of the
 * configured defaults (every run's, its project's, its creator's principal's). A run at a limit pauses before its
 * next model call or its next command's proposal (src/agent/loop.ts, BudgetCheck); run/budget raises it.
 */
export class Budgets {
  constructor(private readonly deps: CoreDeps) {}

  /** The run's budget now; null when nothing limits it. */
  effective(run: Pick<RunRow, "budget" | "attributes">, projectName: string): BudgetOut | null {
    const own = parseBudget(run.budget) ?? {};
    const createdBy = (JSON.parse(run.attributes) as { createdBy?: unknown }).createdBy;
    const out: BudgetOut = { ...this.defaults(projectName, typeof createdBy === "string" ? createdBy : null), ...own };
    return Object.keys(out).length > 0 ? out : null;
  }

  /** The configured limits of a run of `createdBy`'s in the project, limit by limit the smallest of the defaults. */
  defaults(projectName: string, createdBy: string | null): BudgetOut {
    const config = this.deps.config.agent.budgets;
    const defaults = [config.default, config.projects?.[projectName], createdBy === null ? undefined : config.principals?.[createdBy]];
    const out: BudgetOut = {};
    for (const kind of KINDS) {
      const limits = defaults.map((d) => d?.[kind]).filter((v): v is number => v !== undefined);
      if (limits.length) out[kind] = Math.min(...limits);
    }
    return out;
  }

  /** What the run spent, `commands` counted from its accepted proposals. */
  spend(run: Pick<RunRow, "spent_tokens" | "spent_micro_usd" | "spent_ms">, commands: number): z.output<typeof Spend> {
    return {
      tokens: Number(run.spent_tokens ?? 0),
      costUsd: Number(run.spent_micro_usd ?? 0) / 1e6,
      seconds: Math.round(Number(run.spent_ms ?? 0) / 100) / 10,
      commands,
    };
  }

  /** How many of each run's commands were accepted (its log entries at 200). */
  commands(runIds: readonly number[]): Promise<Map<number, number>> {
    return this.deps.repos.runs.pendingProposals(runIds, ENTRY.done);
  }

  /** The run's commands that count toward its budget: accepted, or proposed and waiting for a decision. */
  async #counted(runId: number): Promise<number> {
    const [accepted, waiting] = await Promise.all([
      this.deps.repos.runs.pendingProposals([runId], ENTRY.done),
      this.deps.repos.runs.pendingProposals([runId], ENTRY.proposed),
    ]);
    return (accepted.get(runId) ?? 0) + (waiting.get(runId) ?? 0);
  }

  /** The first limit checked `before` this step that the run is at, with what it used; undefined while it may go on. */
  async reached(run: RunRow, projectName: string, before: BudgetCheck = "model call"): Promise<z.output<typeof BudgetReached> | undefined> {
    const budget = this.effective(run, projectName);
    if (!budget) return undefined;
    const kinds = CHECKED[before];
    const commands = kinds.includes("commands") && budget.commands !== undefined ? await this.#counted(run.id) : 0;
    const spend = this.spend(run, commands);
    for (const kind of kinds) {
      const limit = budget[kind];
      if (limit !== undefined && spend[kind] >= limit) return { kind, limit, used: spend[kind] };
    }
    return undefined;
  }

  /** Whether a paused run stays paused: its budget is still reached where it paused (its attributes say which step). */
  holds(run: RunRow, projectName: string): Promise<z.output<typeof BudgetReached> | undefined> {
    return this.reached(run, projectName, pausedBefore(run));
  }

  /** The run's own budget after `add` (to its budget now) and `set` (its own limits from now on). */
  raised(run: Pick<RunRow, "budget" | "attributes">, projectName: string, change: { add?: BudgetOut | undefined; set?: BudgetOut | undefined }): BudgetOut {
    const own = { ...(parseBudget(run.budget) ?? {}), ...change.set };
    const now = this.effective(run, projectName) ?? {};
    for (const kind of KINDS) {
      const more = change.add?.[kind];
      if (more === undefined) continue;
      const base = change.set?.[kind] ?? now[kind] ?? 0;
      own[kind] = kind === "costUsd" ? Math.round((base + more) * 1e6) / 1e6 : base + more;
    }
    return own;
  }
}
