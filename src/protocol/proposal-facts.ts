import { type EgressReached, egressReachedText, egressText } from "./egress.js";
import { fullAcceptorsText } from "./full-acceptors.js";
import { SANDBOX_MODE_WORDS } from "./sandbox.js";
import { factsOf, type PoolFact, type ProposalFacts, type RunnerClaim, type SandboxFact, type SandboxView } from "./views.js";

/*
 * What a person must see before deciding a proposal, the same on every client (the CLI prompt and
 * `spool pending`, the web view's card, the ACP permission request): read once from the log entry's
 * loose attributes into a typed view (src/protocol/views.ts), and written out by one formatter with one escaping function.
 * Plain TypeScript with no Node imports: the web page bundles it.
 */

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\u001b": "\\e" };

/**
 * Text from elsewhere (a command, an environment value, a path) as it must be shown before someone
 * approves it: control characters, DEL, C1 controls and the invisible, unassigned or direction-changing
 * characters (HIDDEN below) are written as escapes, so nothing can hide part of what would run.
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
 * What escapeControl writes as escapes, by Unicode property rather than by a list kept by hand: every
 * Default_Ignorable_Code_Point (zero-width characters, joiners, bidi marks and controls, variation selectors,
 * Hangul fillers, tag characters, the shorthand format controls U+1BCA0-1BCA3, the musical symbol format
 * controls U+1D173-1D17A, the reserved U+E0080-E0FFF…), and the general categories Cc (C0, DEL, C1), Cf (other
 * format characters), Co (private use), Cn (unassigned, U+FFF0-FFF8 among them: a later Unicode may make them
 * invisible), Cs (a lone surrogate) and the line and paragraph separators Zl, Zp. The tables are the ICU data Node ships
 * (`process.versions.unicode`; 17.0 on Node 20.20). Letters, marks, digits, punctuation, symbols and spaces are kept:
 * an emoji and its skin tone stay as they are, but the joiner (U+200D) and the variation selector (U+FE0F) of an
 * emoji sequence are shown, since they are invisible and two such sequences can look the same. The `u` flag makes
 * astral ones one match each.
 */
const HIDDEN = /\p{Default_Ignorable_Code_Point}|\p{Cc}|\p{Cf}|\p{Co}|\p{Cn}|\p{Cs}|\p{Zl}|\p{Zp}/gu;

/** Whether escapeControl changes anything (a client then marks the text). */
export const hasControl = (text: string) => escapeControl(text) !== text;

export type { PoolFact, ProposalFacts, RunnerClaim, SandboxFact, SandboxView };

/**
 * The facts of a proposal from its log entry's attributes (`run/proposal`'s `attributes`, `proposal/list`,
 * `entry/get` of its log path): the facts part of `producerView`.
 */
export const proposalFacts = (attributes: Record<string, unknown>): ProposalFacts => factsOf(attributes);

/**
 * The facts revision of the facts a client shows (1 until they change): what it sends with an accept
 * (`run/resolve`'s `facts`), so that an accept on facts that changed since is refused (FACTS_CHANGED), never run unseen.
 */
export const factsRevision = (facts: Pick<ProposalFacts, "factsRevision">): number => facts.factsRevision ?? 1;

/** The labels, in the order every client shows them. */
export const FACT_LABELS = ["tool", "command", "cwd", "env", "tty", "runner", "sandbox", "network", "background", "timeout"] as const;
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

const NETWORK_WORDS: Record<NonNullable<ProposalFacts["network"]>, string> = {
  own: "own (outbound only; it cannot reach or bind the host's loopback ports)",
  shared: "shared with the runner's machine (a command can reach and bind its loopback ports)",
  none: "none",
  allowlist: "allowlist (only listed hosts, through a proxy)",
};

/** "90 s", "5 min", "2 h" (a time limit as a person reads it). */
function limit(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000 || ms % 60_000 !== 0) return `${Math.round(ms / 100) / 10} s`;
  if (ms < 7_200_000 || ms % 3_600_000 !== 0) return `${ms / 60_000} min`;
  return `${ms / 3_600_000} h`;
}

/**
 * Where the command runs, escaped: under the project root's own path (`/srv/p/sub (under the project root /srv/p)`), or
 * under the root a runner said it runs the project's commands in (its --root, `~` over SSH, a container's WORKDIR),
 * with the server's path beside it; a pool's runners may differ, and each place one of them would run it is shown.
 */
function cwdText(facts: ProposalFacts): string {
  const server = facts.root === null ? "" : `; the server's is ${escapeControl(facts.root)}`;
  const under = (root: string) => (facts.cwd === null ? root : `${root.replace(/\/+$/, "")}/${facts.cwd}`);
  const pool = facts.pool;
  if (pool && pool.attached === 0 && facts.root !== null) {
    const place = facts.cwd === null ? escapeControl(facts.root) : escapeControl(under(facts.root));
    return `${place} (${facts.cwd === null ? "the project root" : `under the project root ${escapeControl(facts.root)}`}; a runner attached with a root of its own runs it under that)`;
  }
  // The roots where the runners it may go to run the project's commands; null: at the root's own path.
  const roots = pool ? (pool.attached > 0 ? (pool.roots ?? [null]) : [null]) : [facts.runnerClaim?.root ?? null];
  if (roots.some((root) => root !== null)) {
    const on = pool ? (roots.length > 1 ? "on its runners, by runner" : "on its runners") : "on the runner";
    const places = roots.map((root) => root ?? facts.root ?? "the project root");
    const shown = places.map((root) => escapeControl(under(root))).join(" or ");
    if (facts.cwd === null) return `${shown} (the project root ${on}${server})`;
    return `${shown} (under the project root ${on}, ${places.map(escapeControl).join(" or ")}${server})`;
  }
  // The absolute root, so a person sees where the project is on the machine (not only "the project root").
  if (facts.cwd === null) return facts.root === null ? "project root" : `${escapeControl(facts.root)} (the project root)`;
  return facts.root === null ? escapeControl(facts.cwd) : `${escapeControl(facts.cwd)} (under the project root ${escapeControl(facts.root)})`;
}

/** The value of one fact, escaped. */
export function factValue(facts: ProposalFacts, label: FactLabel, options: FactOptions = {}): string {
  switch (label) {
    case "tool":
      return escapeControl(facts.tool);
    case "command":
      return escapeControl(facts.command);
    case "cwd":
      return cwdText(facts);
    case "env":
      return facts.env.length === 0 ? "none added" : facts.env.map(envPair).join(" ");
    case "tty":
      return facts.tty ? `${facts.tty.cols}×${facts.tty.rows}` : "none";
    case "runner": {
      // A pool: which, how many of its runners were attached, and what all of them have in common (who vouches first).
      if (facts.pool) return poolText(facts.pool);
      // With several servers on one database, which server's runner it is (decided when it was proposed): `local@host:7420`.
      const server = facts.runnerServer ? `@${escapeControl(facts.runnerServer)}` : "";
      const claim = facts.runnerClaim === null ? "" : claimText(facts.runnerClaim, server !== "");
      if (facts.runner !== null) return `${escapeControl(facts.runner)}${server}${claim ? ` (${claim})` : ""}`;
      // The runner recorded when it was proposed is the one a plain accept uses; a client's own guess only for older proposals.
      const fallback = facts.defaultRunner ?? options.defaultRunner;
      return fallback ? `default (${escapeControl(fallback)}${facts.defaultRunner ? server : ""}${claim ? `; ${claim}` : ""})` : "default";
    }
    case "sandbox":
      return sandboxText(facts.sandbox);
    case "network":
      if (facts.network === "allowlist" && facts.egress) return `allowlist (${egressText(facts.egress, escapeControl)})`;
      return facts.network === null ? "unknown" : NETWORK_WORDS[facts.network];
    case "background":
      return facts.background ? "yes" : "no";
    case "timeout":
      if (facts.timeoutMs !== null) return limit(facts.timeoutMs);
      // The server's default, as it was when proposed (an older proposal did not record it).
      if (typeof facts.defaultTimeoutMs !== "number") return "server default";
      return `${facts.defaultTimeoutMs === 0 ? "none" : limit(facts.defaultTimeoutMs)} (the server's default)`;
  }
}

/**
 * Who vouches for the runner's sandbox: `this server's own runner` (the embedded one), or, for a remote runner,
 * the principal that attached it and what it claims: `attached by runner "ci", claims read-only, workspace-write, network own`.
 */
export function claimText(claim: RunnerClaim, serverNamed = false): string {
  // Named with its server (several servers share the database): the reader may be on another one.
  if (claim.own) return serverNamed ? "that server's own runner" : "this server's own runner";
  const who = claim.attachedBy === null ? "an unknown principal" : `${claim.attachedAs ?? "principal"} "${escapeControl(claim.attachedBy)}"`;
  const modes = claim.modes.length > 0 ? claim.modes.join(", ") : "no sandbox mode";
  return `attached by ${who}, claims ${modes}, network ${claim.network ?? "not said"}`;
}

/**
 * A pool as the facts show it: `pool linux (2 attached, by runner principal "ci"; local; claims workspace-write, full;
 * network own)`. What its runners have in common is the weakest of them; only a runner of the principals and backends
 * named here takes the command.
 */
export function poolText(pool: PoolFact): string {
  const who = pool.principals.length > 0 ? pool.principals.map((p) => `"${escapeControl(p)}"`).join(", ") : "nobody";
  const name = `pool ${escapeControl(pool.name)}`;
  if (pool.attached === 0) return `${name} (none attached now: it waits for a runner attached by ${who})`;
  const backends = pool.backends.length > 0 ? `; ${pool.backends.map(escapeControl).join(", ")}` : "";
  const modes = pool.modes.length > 0 ? pool.modes.join(", ") : "no sandbox mode in common";
  const network = pool.networks.length > 0 ? pool.networks.join(" or ") : "not said";
  return `${name} (${pool.attached} attached, by ${who}${backends}; claims ${modes}; network ${network}${pool.egress ? "; all enforce an allowlist" : ""})`;
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

/**
 * What a sandboxed command sees (SPEC §7 "What a command sees"): `sees the system (/usr, …) read-only, the project, a
 * private /tmp and home (/root), toolchains /root/.cargo/bin read-only; added: ~/.gitconfig read-only; nothing else`.
 */
export function viewText(view: SandboxView, mode: "read-only" | "workspace-write"): string {
  const list = (paths: readonly string[]) => paths.map(escapeControl).join(", ");
  const parts: string[] = [];
  if (view.image !== null) parts.push(`the image ${escapeControl(view.image)} read-only`);
  if (view.system !== null && view.system.length > 0) parts.push(`the system (${list(view.system)}) read-only`);
  if (view.system === null && view.image === null) parts.push("the system as its runner builds it (it did not say)");
  parts.push(
    view.project === false ? "none of the project (its runner does not mount it)" : "the project",
    view.home === null ? "a private /tmp" : `a private /tmp and home (${escapeControl(view.home)})`,
  );
  if (view.toolchains === null) parts.push("no toolchains (its runner did not say which)");
  else if (view.toolchains.length > 0) parts.push(`toolchains ${list(view.toolchains)} read-only`);
  const added = [
    ...view.read.map((path) => `${escapeControl(path)} read-only`),
    ...view.write.map((path) => `${escapeControl(path)} ${mode === "read-only" ? "read-only" : "writable"}`),
  ];
  return `sees ${parts.join(", ")}${added.length > 0 ? `; added: ${added.join(", ")}` : ""}; nothing else`;
}

/**
 * `workspace-write (sandbox: only the project directory is writable; sees …; nothing else)`; in full, who may accept it:
 * `full (no sandbox: …; only an unscoped admin may accept it)`.
 */
export function sandboxText(sandbox: SandboxFact): string {
  if (sandbox.mode === "unknown") return `unknown mode "${escapeControl(sandbox.given)}" (this client cannot tell what it allows)`;
  const view = sandbox.mode === "full" || sandbox.view === undefined ? "" : `; ${viewText(sandbox.view, sandbox.mode)}`;
  const acceptors = sandbox.mode === "full" && sandbox.acceptors !== undefined ? `; ${fullAcceptorsWords(sandbox.acceptors)}` : "";
  // A runner that does not mount the project: workspace-write writes nothing of it (its private /tmp only).
  const words =
    sandbox.mode === "workspace-write" && sandbox.view?.project === false ? "sandbox: only its private /tmp is writable" : SANDBOX_MODE_WORDS[sandbox.mode];
  return `${sandbox.mode} (${words}${view}${acceptors})`;
}

/** `only an unscoped admin may accept it`, `nobody here may accept it`. */
const fullAcceptorsWords = (acceptors: readonly string[]) =>
  acceptors.length === 0 ? "nobody here may accept it" : `only ${fullAcceptorsText(acceptors, escapeControl)} may accept it`;

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

/**
 * A command's network as every client shows it once it ran: the mode (with an allowlist, its hosts), and for an
 * allowlist the hosts it reached and was refused when it ended: `allowlist (registry.npmjs.org); reached
 * registry.npmjs.org:443; refused evil.example:443`.
 */
export function networkShown(p: ProposalFacts & { egressReached?: EgressReached | null | undefined }): string {
  const mode = factValue(p, "network");
  return p.egressReached ? `${mode}; ${egressReachedText(p.egressReached, escapeControl)}` : mode;
}
