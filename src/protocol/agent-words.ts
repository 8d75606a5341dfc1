/*
 * What every client says of a run's context and spend, in the same words (`spool show`, `spool runs`, the live
 * CLI, the web page, ACP): a compaction, a run's spend, a budget reached. Plain TypeScript, no Node imports and
 * no zod at run time: the web page bundles it.
 */

/** A compaction as one line of the conversation. */
export function compactionWords(c: { replaced: number; reason: "window" | "too long"; tokensBefore: number; tokensAfter: number }): string {
  const why = c.reason === "window" ? "near the model's context window" : "the model said the conversation was too long";
  const size = c.tokensBefore > 0 ? `, ~${thousands(c.tokensBefore)} → ~${thousands(c.tokensAfter)} tokens` : "";
  return `── context compacted (${why}): ${c.replaced} earlier message${c.replaced === 1 ? "" : "s"} summarised${size}; the whole conversation stays stored ──`;
}

/** 12,345 → "12.3k", 999 → "999". */
export function thousands(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

type Kind = "tokens" | "costUsd" | "seconds" | "commands";
type Limits = Partial<Record<Kind, number>>;

/** One amount of a kind as people read it: "$5.00", "12.3k tokens", "90 s", "3 commands". */
export function amountWords(kind: Kind, value: number): string {
  switch (kind) {
    case "costUsd":
      return `$${value < 0.01 && value > 0 ? value.toFixed(4) : value.toFixed(2)}`;
    case "tokens":
      return `${thousands(value)} tokens`;
    case "seconds":
      return `${Math.round(value)} s`;
    case "commands":
      return `${value} command${value === 1 ? "" : "s"}`;
  }
}

const BUDGET_NAMES: Record<Kind, string> = { tokens: "token", costUsd: "cost", seconds: "time", commands: "command" };

/** What a run spent, each against its limit where it has one: "$0.42 of $5.00 · 12.3k tokens · 3 commands". */
export function spendWords(spend: Record<Kind, number>, budget: Limits | null | undefined): string {
  const kinds: Kind[] = ["costUsd", "tokens", "seconds", "commands"];
  return kinds
    .filter((k) => spend[k] > 0 || budget?.[k] !== undefined)
    .map((k) => (budget?.[k] !== undefined ? `${amountWords(k, spend[k])} of ${amountWords(k, budget[k]!)}` : amountWords(k, spend[k])))
    .join(" · ");
}

/** Why a run is paused, and how to go on: "its cost budget of $5.00 was reached ($5.02 spent)". */
export function pausedWords(paused: { kind: Kind; limit: number; used: number }): string {
  return `its ${BUDGET_NAMES[paused.kind]} budget of ${amountWords(paused.kind, paused.limit)} was reached (${amountWords(paused.kind, paused.used)} used)`;
}

/** What a person's "raise" adds to a budget reached: the limit once more (at least $1, 10k tokens, 10 minutes, 10 commands). */
export function raiseStep(reached: { kind: Kind; limit: number }): number {
  const floor = { costUsd: 1, tokens: 10_000, seconds: 600, commands: 10 }[reached.kind];
  return Math.max(reached.limit, floor);
}

/** `step` of `kind` as `spool budget RUN` takes it (parseBudgetChange reads it back): "+5$", "+20k", "+600s", "+10cmd". */
export function raiseArgument(kind: Kind, step: number): string {
  switch (kind) {
    case "costUsd":
      return `+${Math.round(step * 100) / 100}$`;
    case "tokens":
      return step % 1000 === 0 ? `+${step / 1000}k` : `+${step}tokens`;
    case "seconds":
      return `+${step}s`;
    case "commands":
      return `+${step}cmd`;
  }
}

/** The command that raises a paused run's budget by its step: `spool budget run-1 +5$`. */
export function raiseCommand(run: string, reached: { kind: Kind; limit: number }): string {
  return `spool budget ${run} ${raiseArgument(reached.kind, raiseStep(reached))}`;
}

/**
 * A budget change as people type it: `+2$` or `+$2` (add dollars), `5$` (set), `+50k` or `+50000tokens`, `+10m`
 * or `+90s`, `+3cmd`. Undefined when it is none of these.
 */
export function parseBudgetChange(text: string): { op: "add" | "set"; kind: Kind; value: number } | undefined {
  const m = /^(\+)?(?:\$(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*(\$|usd|k|m|tokens?|s|min|h|cmds?|commands?)?)$/i.exec(text.trim());
  if (!m) return undefined;
  const op = m[1] ? "add" : "set";
  if (m[2] !== undefined) return { op, kind: "costUsd", value: Number(m[2]) };
  const n = Number(m[3]);
  const unit = (m[4] ?? "tokens").toLowerCase();
  if (unit === "$" || unit === "usd") return { op, kind: "costUsd", value: n };
  if (unit === "k") return { op, kind: "tokens", value: Math.round(n * 1000) };
  if (unit === "m") return { op, kind: "tokens", value: Math.round(n * 1_000_000) };
  if (unit.startsWith("token")) return { op, kind: "tokens", value: Math.round(n) };
  if (unit === "s") return { op, kind: "seconds", value: Math.round(n) };
  if (unit === "min") return { op, kind: "seconds", value: Math.round(n * 60) };
  if (unit === "h") return { op, kind: "seconds", value: Math.round(n * 3600) };
  return { op, kind: "commands", value: Math.round(n) };
}
