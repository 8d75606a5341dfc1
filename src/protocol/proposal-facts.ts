import { SANDBOX_MODE_WORDS, SANDBOX_MODES, type SandboxModeName } from "./sandbox.js";

/*
 * What a person must see before deciding a proposal, the same on every client (the CLI prompt and
 * `spool pending`, the web view's card, the ACP permission request): read once from the log entry's
 * loose attributes into a typed view, and written out by one formatter with one escaping function.
 * Plain TypeScript with no Node imports: the web page bundles it.
 */

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\u001b": "\\e" };

/**
 * Text from elsewhere (a command, an environment value, a path) as it must be shown before someone
 * approves it: control characters, DEL, C1 controls and the invisible or direction-changing characters
 * are written as escapes, so nothing can hide part of what would run.
 */
export function escapeControl(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
  });
}

/** Whether escapeControl changes anything (a client then marks the text). */
export const hasControl = (text: string) => escapeControl(text) !== text;

/**
 * Where the command would run: a known mode, or `unknown` with the word the server sent (a newer server's
 * mode this client cannot describe — shown as it is, never taken for another).
 */
export type SandboxFact = { mode: SandboxModeName } | { mode: "unknown"; given: string };

/** A pending proposal's facts, unescaped (formatting escapes them). */
export interface ProposalFacts {
  tool: string;
  command: string;
  /** Relative to the project root; null: the root itself. */
  cwd: string | null;
  /** The variables it adds to the runner's environment, in the order proposed. */
  env: [name: string, value: string][];
  /** A pseudo-terminal of this size; null: plain pipes. */
  tty: { cols: number; rows: number } | null;
  /** The runner it was proposed for; null: the one the decision picks (the project's default unless told). */
  runner: string | null;
  /** Long-running work started in the background (its own, longer time limit). */
  background: boolean;
  /** Its time limit; null: the server's default for its kind. */
  timeoutMs: number | null;
  sandbox: SandboxFact;
}

const text = (value: unknown): string => (typeof value === "string" ? value : value === undefined || value === null ? "" : JSON.stringify(value));
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const isSize = (value: unknown) => Number.isInteger(value) && (value as number) > 0;

/**
 * The facts of a proposal from its log entry's attributes (`run/proposal`'s `attributes`,
 * `proposal/list`, `entry/get` of its log path). The sandbox mode is the `sandbox` attribute; a log
 * entry written before modes existed has none and is `read-only` when `readOnly` is set, else `full`.
 */
export function proposalFacts(attributes: Record<string, unknown>): ProposalFacts {
  const a = attributes;
  const env: [string, string][] = isRecord(a.env) ? Object.entries(a.env).map(([name, value]) => [name, text(value)]) : [];
  const tty = isRecord(a.tty) && isSize(a.tty.cols) && isSize(a.tty.rows) ? { cols: a.tty.cols as number, rows: a.tty.rows as number } : null;
  let sandbox: SandboxFact;
  if (a.sandbox === undefined || a.sandbox === null) sandbox = { mode: a.readOnly === true ? "read-only" : "full" };
  else if ((SANDBOX_MODES as readonly unknown[]).includes(a.sandbox)) sandbox = { mode: a.sandbox as SandboxModeName };
  else sandbox = { mode: "unknown", given: text(a.sandbox) };
  return {
    tool: text(a.tool),
    command: text(a.command),
    cwd: typeof a.cwd === "string" && a.cwd !== "" && a.cwd !== "." ? a.cwd : null,
    env,
    tty,
    runner: typeof a.runner === "string" && a.runner !== "" ? a.runner : null,
    background: a.background === true,
    timeoutMs: typeof a.timeoutMs === "number" && a.timeoutMs > 0 ? a.timeoutMs : null,
    sandbox,
  };
}

/** The labels, in the order every client shows them. */
export const FACT_LABELS = ["tool", "command", "cwd", "env", "tty", "runner", "sandbox", "background", "timeout"] as const;
export type FactLabel = (typeof FACT_LABELS)[number];

/** One labelled line; `value` is escaped and ready to show. */
export interface FactLine {
  label: FactLabel;
  value: string;
}

export interface FactOptions {
  /** The name of the runner a decision without one picks (shown next to "default"). */
  defaultRunner?: string | null;
}

/** "90 s", "5 min", "2 h" (a time limit as a person reads it). */
function limit(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000 || ms % 60_000 !== 0) return `${Math.round(ms / 100) / 10} s`;
  if (ms < 7_200_000 || ms % 3_600_000 !== 0) return `${ms / 60_000} min`;
  return `${ms / 3_600_000} h`;
}

/** The value of one fact, escaped. */
export function factValue(facts: ProposalFacts, label: FactLabel, options: FactOptions = {}): string {
  switch (label) {
    case "tool":
      return escapeControl(facts.tool);
    case "command":
      return escapeControl(facts.command);
    case "cwd":
      return facts.cwd === null ? "project root" : escapeControl(facts.cwd);
    case "env":
      return facts.env.length === 0 ? "none added" : facts.env.map(envPair).join(" ");
    case "tty":
      return facts.tty ? `${facts.tty.cols}×${facts.tty.rows}` : "none";
    case "runner":
      if (facts.runner !== null) return escapeControl(facts.runner);
      return options.defaultRunner ? `default (${escapeControl(options.defaultRunner)})` : "default";
    case "sandbox":
      return sandboxText(facts.sandbox);
    case "background":
      return facts.background ? "yes" : "no";
    case "timeout":
      return facts.timeoutMs === null ? "server default" : limit(facts.timeoutMs);
  }
}

/** `NAME=value`, escaped. */
export const envPair = ([name, value]: [string, string]) => escapeControl(`${name}=${value}`);

/** `workspace-write (sandbox: only the project directory is writable)`. */
export function sandboxText(sandbox: SandboxFact): string {
  if (sandbox.mode === "unknown") return `unknown mode "${escapeControl(sandbox.given)}" (this client cannot tell what it allows)`;
  return `${sandbox.mode} (${SANDBOX_MODE_WORDS[sandbox.mode]})`;
}

/** Every fact as a labelled line, in FACT_LABELS order. */
export function factLines(facts: ProposalFacts, options: FactOptions = {}): FactLine[] {
  return FACT_LABELS.map((label) => ({ label, value: factValue(facts, label, options) }));
}

/** The facts as plain text, one `label  value` line each (labels padded), each line prefixed by `indent`. */
export function factsText(facts: ProposalFacts, options: FactOptions & { indent?: string } = {}): string {
  const width = Math.max(...FACT_LABELS.map((l) => l.length));
  return factLines(facts, options)
    .map((line) => `${options.indent ?? ""}${line.label.padEnd(width)}  ${line.value}`)
    .join("\n");
}

/** The runner a decision without one picks: the project's default, else the embedded local runner (as `runner/list` describes them). */
export function defaultRunnerName(runners: readonly { name: string; default: boolean; embedded: boolean }[]): string | null {
  return (runners.find((r) => r.default) ?? runners.find((r) => r.embedded))?.name ?? null;
}
