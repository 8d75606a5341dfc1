import { SANDBOX_MODE_WORDS } from "./sandbox.js";
import { factsOf, type ProposalFacts, type SandboxFact } from "./views.js";

/*
 * What a person must see before deciding a proposal, the same on every client (the CLI prompt and
 * `spool pending`, the web view's card, the ACP permission request): read once from the log entry's
 * loose attributes into a typed view (src/protocol/views.ts), and written out by one formatter with one escaping function.
 * Plain TypeScript with no Node imports: the web page bundles it.
 */

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\u001b": "\\e" };

/**
 * Text from elsewhere (a command, an environment value, a path) as it must be shown before someone
 * approves it: control characters, DEL, C1 controls and the invisible or direction-changing characters
 * are written as escapes, so nothing can hide part of what would run.
 */
export function escapeControl(text: string): string {
  return text.replace(HIDDEN, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
  });
}

/**
 * What escapeControl writes as escapes: C0 and C1 controls, DEL, the soft hyphen, the combining grapheme joiner,
 * the Arabic letter mark, the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0), the Khmer invisible vowels,
 * the Mongolian free variation selectors and vowel separator, zero-width characters and direction marks,
 * line/paragraph separators, the bidi embeddings, overrides and isolates (U+202A-202E, U+2066-2069),
 * invisible operators, variation selectors (U+FE00-FE0F, U+E0100-E01EF), the byte order mark, interlinear
 * annotation controls and the tag characters (U+E0000-E007F). The `u` flag makes astral ones one match each.
 */
const HIDDEN =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: combining marks are matched alone on purpose, to be shown as escapes
  /[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\u{e0000}-\u{e007f}\u{e0100}-\u{e01ef}]/gu;

/** Whether escapeControl changes anything (a client then marks the text). */
export const hasControl = (text: string) => escapeControl(text) !== text;

export type { ProposalFacts, SandboxFact };

/**
 * The facts of a proposal from its log entry's attributes (`run/proposal`'s `attributes`, `proposal/list`,
 * `entry/get` of its log path): the facts part of `producerView`.
 */
export const proposalFacts = (attributes: Record<string, unknown>): ProposalFacts => factsOf(attributes);

/** The labels, in the order every client shows them. */
export const FACT_LABELS = ["tool", "command", "cwd", "env", "tty", "runner", "sandbox", "background", "timeout"] as const;
export type FactLabel = (typeof FACT_LABELS)[number];

/** One labelled line; `value` is escaped and ready to show. */
export interface FactLine {
  label: FactLabel;
  value: string;
}

export interface FactOptions {
  /** The name of the runner a decision without one picks (shown next to "default") when the proposal recorded none. */
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
    case "runner": {
      if (facts.runner !== null) return escapeControl(facts.runner);
      // The runner recorded when it was proposed is the one a plain accept uses; a client's own guess only for older proposals.
      const fallback = facts.defaultRunner ?? options.defaultRunner;
      return fallback ? `default (${escapeControl(fallback)})` : "default";
    }
    case "sandbox":
      return sandboxText(facts.sandbox);
    case "background":
      return facts.background ? "yes" : "no";
    case "timeout":
      return facts.timeoutMs === null ? "server default" : limit(facts.timeoutMs);
  }
}

/**
 * `NAME=value`, escaped; a value that is empty or holds anything but letters, digits and `_./:,@%+-` is put
 * in shell-style single quotes (`'` inside written `'\''`), so a value like `x PATH=/usr/bin` cannot pass for
 * a second variable when the pairs are shown side by side.
 */
export function envPair([name, value]: [string, string]): string {
  const shown = escapeControl(value);
  const plain = shown !== "" && /^[A-Za-z0-9_./:,@%+-]+$/.test(shown);
  return `${escapeControl(name)}=${plain ? shown : `'${shown.replaceAll("'", "'\\''")}'`}`;
}

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
