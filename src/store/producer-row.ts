import { type EgressFact, type EgressReached, egressOf, egressReachedOf } from "../protocol/egress.js";
import { type DecisionAndEnd, decisionAndEnd, int, isRecord, num, outcomeOf, anyString as str } from "../protocol/producer-attributes.js";
import { SANDBOX_MODES, type SandboxModeName } from "../protocol/sandbox.js";
import {
  networkFactOf,
  type Outcome,
  type PoolFact,
  type ProposalFacts,
  poolFactOf,
  runnerClaimOf,
  runnerServerOf,
  type SandboxView,
  SPOOL_ATTRIBUTES,
  sandboxViewOf,
} from "../protocol/views.js";
import { type Attributes, wireAttributes } from "./entries.js";
import type { EntryRow } from "./schema.js";

/*
 * A producer's rows as the server's code reads them: its log entry (`producerFromRow`) and its data
 * channels (`channelFromRow`). The attributes column is JSON that Spool and plugins write into; this is the
 * one place that reads it into named, typed fields, so no caller picks at the JSON. The fields carry the
 * names of the wire's typed view (protocol's Producer) where both have one.
 */

/** How a producer ended, as its rows record it. */
export type ProducerOutcome = Outcome;

/** What a producer's log entry holds: its proposal, its decision, where it ran and how it ended. */
export interface Producer extends DecisionAndEnd {
  id: number;
  runId: number;
  path: string;
  /** The log entry's status: ENTRY.proposed, ENTRY.done (accepted) or ENTRY.rejected. */
  status: number;
  turn: number;
  createdAt: number;
  tool: string;
  command: string;
  /** The project's absolute root when it was proposed; null: not recorded. */
  root: string | null;
  /** Relative to the project root, as confined at proposal time; "" is the root. */
  cwd: string;
  /** The variables it adds to the runner's environment. */
  env: Record<string, string>;
  /** A pseudo-terminal of this size (its size now, after resizes); null: plain pipes. */
  tty: { cols: number; rows: number } | null;
  background: boolean;
  /** Its own time limit; null: the server's default for its kind. */
  timeoutMs: number | null;
  /** No limit proposed: the server's default for its kind when it was proposed (null: not recorded). */
  defaultTimeoutMs: number | null;
  slug: string;
  /** The sandbox mode recorded at proposal time; null: none recorded (a proposal from before modes). */
  sandbox: SandboxModeName | null;
  /** Recorded read-only (the attribute from before sandbox modes, still written). */
  readOnly: boolean;
  /** What the command sees besides its project (read-only and workspace-write), as shown at proposal time; null when not recorded. */
  sandboxView: SandboxView | null;
  /** In sandbox mode full: who may accept it (`sandboxFullAcceptors` when it was proposed); null when not recorded. */
  fullAcceptors: string[] | null;
  /** The command's network where it goes (own, shared, none); null when not recorded. */
  network: ProposalFacts["network"];
  /** Network allowlist: the project's hosts and those the proposal asked for; null: none. */
  egress: EgressFact | null;
  /** Network allowlist, once it ended: the hosts it reached and was refused; null: not recorded. */
  egressReached: EgressReached | null;
  /** The loop and tool call of the model that proposed it; null for a client's proposal. */
  loop: number | null;
  /** Before the decision, the runner it was proposed for (null: none named); after an accept, the runner that took it ("self": the connection that accepted it). */
  runner: string | null;
  /** Proposed for no runner: the one a decision naming none sends it to, resolved at proposal time; null: none was attached. */
  defaultRunner: string | null;
  /** What the runner it goes to says of itself and who attached it, recorded at proposal time; null: not known. */
  runnerClaim: ProposalFacts["runnerClaim"];
  /** Proposed (or accepted) for a pool: the pool as it was then, its runners' common claims; null: a runner. */
  pool: PoolFact | null;
  /** Accepted while no runner of it was free: the queue it waited in (`pool:NAME`, `labels:…`, `runner:NAME`); null: never queued. */
  queue: string | null;
  /** When a runner took it from the queue (ms since the epoch); null: it was never queued, or waits still. */
  takenAt: number | null;
  /** With several servers on the database: the server whose runner it goes to, decided at proposal time; null: not recorded. */
  runnerServer: { id: number; label: string } | null;
  /** Its facts' revision: 1 as proposed, one more each time the server changed them before the decision (its runner's server stopped). */
  factsRevision: number;
  /** The key of the owner's resume token; null before an accept. */
  ownerKey: string | null;
  /** Where it runs, as its runner reported it. */
  process: Record<string, unknown> | null;
  /** Complete lines of each channel the model has been shown. */
  modelSeen: Record<string, number>;
  /** Attributes a plugin (or the agent loop) set that Spool does not name here. */
  extra: Attributes;
}

/** One data channel of a producer (0 the input clients sent, 1 stdout, 2 stderr, higher a producer's own). */
export interface ProducerChannel {
  id: number;
  channel: number;
  /** The producer's name for it (stdout, stderr, stdin…), else `channel N`. */
  name: string;
  path: string;
  /** Its producer's log entry. */
  log: string;
  status: number;
  /** When the end of input was sent (input channel); null while it is open. */
  eofAt: number | null;
  outcome: ProducerOutcome | null;
  exitCode: number | null;
  signal: string | null;
  reason: string | null;
}

function sandboxOf(value: unknown, path: string): SandboxModeName | null {
  if (value === undefined || value === null) return null;
  if ((SANDBOX_MODES as readonly unknown[]).includes(value)) return value as SandboxModeName;
  // Only a server that knows more modes writes one this server does not know (servers sharing a database).
  throw new Error(`the producer ${path} was proposed in sandbox mode ${JSON.stringify(value)}, which this server does not know; upgrade it`);
}

/** A producer from its log entry. */
export function producerFromRow(row: EntryRow): Producer {
  const a = wireAttributes(row);
  const tty = isRecord(a.tty) && int(a.tty.cols) !== null && int(a.tty.rows) !== null ? { cols: a.tty.cols as number, rows: a.tty.rows as number } : null;
  const env = isRecord(a.env) ? Object.fromEntries(Object.entries(a.env).map(([k, v]) => [k, String(v)])) : {};
  const modelSeen = isRecord(a.modelSeen) ? Object.fromEntries(Object.entries(a.modelSeen).filter((e): e is [string, number] => typeof e[1] === "number")) : {};
  return {
    id: row.id,
    runId: row.run_id,
    path: row.path,
    status: row.status,
    turn: row.turn,
    createdAt: row.created_at,
    tool: String(a.tool),
    command: String(a.command),
    root: str(a.root),
    cwd: str(a.cwd) ?? "",
    env,
    tty,
    background: a.background === true,
    timeoutMs: num(a.timeoutMs),
    defaultTimeoutMs: num(a.defaultTimeoutMs),
    slug: String(a.slug),
    sandbox: sandboxOf(a.sandbox, row.path),
    readOnly: a.readOnly === true,
    sandboxView: sandboxViewOf(a.sandboxView),
    fullAcceptors: Array.isArray(a.fullAcceptors) ? a.fullAcceptors.filter((p): p is string => typeof p === "string") : null,
    network: networkFactOf(a.network),
    egress: egressOf(a.egress),
    egressReached: egressReachedOf(a.egressReached),
    loop: num(a.loop),
    runner: str(a.runner),
    defaultRunner: str(a.defaultRunner),
    runnerClaim: runnerClaimOf(a.runnerClaim),
    pool: poolFactOf(a.pool),
    queue: str(a.queue),
    takenAt: num(a.takenAt),
    runnerServer: runnerServerOf(a.runnerServer),
    factsRevision: Number.isInteger(a.factsRevision) && (a.factsRevision as number) > 1 ? (a.factsRevision as number) : 1,
    ownerKey: str(a.ownerKey),
    process: isRecord(a.process) ? a.process : null,
    modelSeen,
    extra: Object.fromEntries(Object.entries(a).filter(([key]) => !SPOOL_ATTRIBUTES.has(key))),
    // Spread last, never first: on Node 20 an object made by spreading one and then adding properties gets a map of
    // its own for each property added (about 3 µs each here; this function took 120-160 µs a call that way, against 3
    // with the spread last). test/store/producer-row-cost.test.ts holds it.
    ...decisionAndEnd(a, str),
  };
}

/** A data channel from its entry. */
export function channelFromRow(row: EntryRow): ProducerChannel {
  const a = wireAttributes(row);
  const channel = row.channel ?? int(a.channel) ?? -1;
  return {
    id: row.id,
    channel,
    name: str(a.name) ?? `channel ${channel}`,
    path: row.path,
    log: str(a.log) ?? "",
    status: row.status,
    eofAt: a.eof === undefined ? null : (num(a.eof) ?? 0),
    outcome: outcomeOf(a.outcome),
    exitCode: int(a.exit_code),
    signal: str(a.signal),
    reason: str(a.reason),
  };
}
