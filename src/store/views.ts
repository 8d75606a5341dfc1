import type { EntrySummaryOut, RunOut } from "../protocol/common.js";
import type { SandboxFact } from "../protocol/views.js";
import { type Channel, type Producer, processOf, producerState } from "../protocol/views.js";
import { channelFromRow, producerFromRow } from "./producer-row.js";
import { countNewlines, lineCount, wireAttributes } from "./repositories.js";
import type { EntryRow, RunRow } from "./schema.js";

/** Wire shapes of rows: what methods return for runs, entries, producers and their channels. */

/**
 * A run as the wire has it; `pending`: how many of its proposals wait for a decision (pendingProposals); `rejected`:
 * how many of those made since its latest prompt were rejected (rejectedInLastLoop).
 */
export function runView(row: RunRow, pending: number, rejected = 0, lastCommand?: EntryRow): RunOut {
  const ended = lastCommand ? commandEnding(producerFromRow(lastCommand)) : undefined;
  return {
    alias: row.alias,
    model: row.model,
    mode: row.mode,
    status: row.status,
    turn: row.turn,
    title: row.title,
    pending,
    rejected,
    ...(ended ? { lastCommand: ended } : {}),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** How a producer ended, in RunView's `lastCommand` words; undefined while it has not. */
function commandEnding(p: Pick<Producer, "outcome" | "exitCode" | "signal">): RunOut["lastCommand"] {
  switch (p.outcome) {
    case "completed":
      return p.exitCode === 0 && p.signal === null ? "succeeded" : "failed";
    case "cancelled":
      return "cancelled";
    case "aborted":
      return "interrupted";
    default:
      return undefined;
  }
}

/** A data channel's entry as the wire's typed `Channel`. */
export function channelWire(row: EntryRow): Channel {
  const channel = channelFromRow(row);
  return {
    channel: channel.channel,
    name: channel.name,
    path: row.path,
    log: channel.log,
    status: row.status,
    bytes: row.streamed ? row.bytes : Buffer.byteLength(row.body, "utf8"),
    lines: row.streamed ? lineCount(row) : countLines(Buffer.from(row.body, "utf8")),
    lastSeq: null,
    eofAt: channel.eofAt,
  };
}

const text = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value));
const nonEmpty = (value: string | null): string | null => (value === null || value === "" ? null : value);

/**
 * A producer's log entry and its channel entries as the wire's typed `Producer`, built on the row mapping
 * (producerFromRow, channelFromRow): the server reads the attributes once, and every client gets the same
 * fields. Only the wire's spelling differs: the project root is a null cwd, env is name/value pairs in the
 * order proposed, the sandbox is a fact, nothing the server alone reads (owner key, ids) goes out.
 */
export function producerWire(log: EntryRow, channelRows: readonly EntryRow[]): Producer {
  const p = producerFromRow(log);
  const channels = channelRows.map(channelWire).sort((x, y) => x.channel - y.channel);
  const mode = p.sandbox ?? (p.readOnly ? "read-only" : "full");
  const sandbox: SandboxFact = {
    mode,
    ...(mode !== "full" && p.sandboxView ? { view: p.sandboxView } : {}),
    ...(mode === "full" && p.fullAcceptors ? { acceptors: p.fullAcceptors } : {}),
  };
  return {
    tool: p.tool,
    command: p.command,
    root: p.root,
    cwd: p.cwd === "" || p.cwd === "." ? null : p.cwd,
    env: Object.entries(p.env).map(([name, value]) => [name, text(value)]),
    tty: p.tty,
    runner: nonEmpty(p.runner),
    defaultRunner: nonEmpty(p.defaultRunner),
    runnerClaim: p.runnerClaim,
    ...(p.pool ? { pool: p.pool } : {}),
    // Several servers on one database: whose runner runs it, and how often that changed before the decision (as factsOf).
    ...(p.runnerServer ? { runnerServer: p.runnerServer.label } : {}),
    ...(p.factsRevision > 1 ? { factsRevision: p.factsRevision } : {}),
    background: p.background,
    timeoutMs: p.timeoutMs !== null && p.timeoutMs > 0 ? p.timeoutMs : null,
    ...(p.defaultTimeoutMs !== null && p.defaultTimeoutMs >= 0 ? { defaultTimeoutMs: p.defaultTimeoutMs } : {}),
    sandbox,
    network: p.network,
    ...(p.egress ? { egress: p.egress } : {}),
    path: p.path,
    status: p.status,
    state: producerState(p.status, p.outcome, p.endStatus, channels),
    turn: p.turn,
    slug: nonEmpty(p.slug),
    sandboxNetwork: p.sandboxNetwork,
    sandboxReason: nonEmpty(p.sandboxReason),
    proposedBy: nonEmpty(p.proposedBy),
    loop: p.loop,
    toolCallId: nonEmpty(p.toolCallId),
    decision: p.decision,
    resolvedBy: nonEmpty(p.resolvedBy),
    reason: nonEmpty(p.reason),
    process: processOf(p.process),
    outcome: p.outcome,
    endStatus: p.endStatus,
    exitCode: p.exitCode,
    signal: nonEmpty(p.signal),
    durationMs: p.durationMs,
    acceptedAt: p.acceptedAt,
    cancelledBy: nonEmpty(p.cancelledBy),
    ...(p.egressReached ? { egressReached: p.egressReached } : {}),
    modelSeen: Object.keys(p.modelSeen).length === 0 ? null : p.modelSeen,
    channels,
    extra: p.extra,
  };
}

/**
 * An entry as entry/get and entry/list return it: with the typed `producer` for a producer's log entry
 * (`channels`: its channel entries) and the typed `channel` for one of its data channels.
 */
export function entrySummary(row: EntryRow, channels: readonly EntryRow[] = []): EntrySummaryOut {
  const typed = {
    producer: row.scheme === "log" ? producerWire(row, channels) : null,
    channel: row.producer_id !== null ? channelWire(row) : null,
  };
  // A streamed entry's size is kept with its row; a short entry's is that of its body.
  const body = row.streamed ? null : Buffer.from(row.body, "utf8");
  return {
    path: row.path,
    status: row.status,
    turn: row.turn,
    attributes: wireAttributes(row),
    ...typed,
    bytes: body ? body.length : row.bytes,
    lines: body ? countLines(body) : lineCount(row),
    streamed: body === null,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}
export function countLines(data: Buffer): number {
  if (data.length === 0) return 0;
  return countNewlines(data) + (data[data.length - 1] === 10 ? 0 : 1);
}

/** `count` lines from 0-based `start` of an in-memory body. */
export function sliceLines(data: Buffer, start: number, count: number): Buffer {
  let from = 0;
  for (let i = 0; i < start; i++) {
    const nl = data.indexOf(10, from);
    if (nl === -1) return Buffer.alloc(0);
    from = nl + 1;
  }
  let to = from;
  for (let i = 0; i < count && to < data.length; i++) {
    const nl = data.indexOf(10, to);
    to = nl === -1 ? data.length : nl + 1;
  }
  return data.subarray(from, to);
}
