import { egressOf } from "./egress.js";
import { decisionAndEnd, int, isRecord, num, nonEmptyString as str } from "./producer-attributes.js";
import type { Role } from "./roles.js";
import { type NetworkKind, SANDBOX_MODES, type SandboxModeName } from "./sandbox.js";
import { ENTRY } from "./status.js";
import type {
  Channel,
  Outcome,
  PoolFact,
  ProcessPlace,
  Producer,
  ProducerState,
  ProposalFacts,
  ProposalView,
  RunnerClaim,
  RunView,
  SandboxFact,
  SandboxView,
} from "./views-schemas.js";

export type { Channel, Outcome, PoolFact, ProcessPlace, Producer, ProducerState, ProposalFacts, ProposalView, RunnerClaim, RunView, SandboxFact, SandboxView };

/*
 * Typed views of what the wire carries about runs, proposals, producers and their channels. The server
 * reads a producer's stored attributes once (src/store/views.ts) and sends the typed `Producer` and
 * `Channel` next to them; every client (the CLI, the web page, ACP, MCP) renders those, through the helpers
 * here. Every field Spool itself writes has a name and a type (the schemas are in views-schemas.ts); a
 * plugin's own attributes stay in `extra`. Plain TypeScript, no Node imports and no zod at run time: the
 * web page bundles this file.
 */

/** An entry with its stored attributes (`entry/list`, `entry/get`): a log entry or a data channel. */
export interface WireEntry {
  path: string;
  status: number;
  turn: number;
  attributes: Record<string, unknown>;
  bytes?: number;
  lines?: number;
}

/** Log-entry attributes only the server reads (the owner's key) and the old spelling of the sandbox mode: never shown, never `extra`. */
const INTERNAL = ["ownerKey", "readOnly"] as const;

/**
 * Every attribute Spool writes on a producer's log entry or its channels; the rest is a plugin's `extra`.
 * The server's row mapping (src/store/producer-row.ts) uses the same list.
 */
export const SPOOL_ATTRIBUTES: ReadonlySet<string> = new Set([
  ...INTERNAL,
  "tool",
  "command",
  "root",
  "cwd",
  "env",
  "tty",
  "runner",
  "defaultRunner",
  "runnerClaim",
  "runnerServer",
  "pool",
  "queue",
  "takenAt",
  "factsRevision",
  "background",
  "timeoutMs",
  "defaultTimeoutMs",
  "sandbox",
  "sandboxNetwork",
  "sandboxReason",
  "sandboxView",
  "fullAcceptors",
  "network",
  "egress",
  "egressReached",
  "slug",
  "proposedBy",
  "loop",
  "toolCallId",
  "decision",
  "resolvedBy",
  "reason",
  "process",
  "outcome",
  "status",
  "exit_code",
  "signal",
  "duration",
  "acceptedAt",
  "cancelledBy",
  "modelSeen",
  "channels",
  "log",
  "channel",
  "name",
  "eof",
]);

const text = (value: unknown): string => (typeof value === "string" ? value : value === undefined || value === null ? "" : JSON.stringify(value));
const isSize = (value: unknown) => Number.isInteger(value) && (value as number) > 0;

/** The `network` attribute as the fact: own, shared, none; null for anything else (not recorded). */
export const networkOf = (value: unknown): NetworkKind | null => (value === "own" || value === "shared" || value === "none" ? value : null);

/** The `network` attribute of a proposal: a NetworkKind or `allowlist`; null for anything else. */
export const networkFactOf = (value: unknown): ProposalFacts["network"] => (value === "allowlist" ? value : networkOf(value));

/** Every role (a Record, so that a new one is a compile error here): roles.ts itself brings zod, which the page does not bundle. */
const ROLE_NAMES: Record<Role, true> = { runner: true, viewer: true, agent: true, person: true, admin: true };

/** The `runnerClaim` attribute as the fact; null for anything that is not one (not recorded). */
export function runnerClaimOf(value: unknown): RunnerClaim | null {
  if (!isRecord(value) || typeof value.own !== "boolean") return null;
  const modes = Array.isArray(value.modes) ? value.modes.filter((m): m is SandboxModeName => (SANDBOX_MODES as readonly unknown[]).includes(m)) : [];
  const role = typeof value.attachedAs === "string" && Object.hasOwn(ROLE_NAMES, value.attachedAs) ? (value.attachedAs as Role) : null;
  const root = typeof value.root === "string" && value.root !== "" ? { root: value.root } : {};
  return { own: value.own, attachedBy: str(value.attachedBy), attachedAs: role, modes, network: networkOf(value.network), ...root };
}

/** The `pool` attribute as the fact; null for anything that is not one (not recorded, or a runner). */
export function poolFactOf(value: unknown): PoolFact | null {
  if (!isRecord(value) || typeof value.name !== "string") return null;
  const labels = isRecord(value.labels) ? Object.fromEntries(Object.entries(value.labels).filter((e): e is [string, string] => typeof e[1] === "string")) : {};
  return {
    name: value.name,
    configured: value.configured === true,
    labels,
    attached: int(value.attached) ?? 0,
    principals: strings(value.principals) ?? [],
    backends: strings(value.backends) ?? [],
    modes: (strings(value.modes) ?? []).filter((m): m is SandboxModeName => (SANDBOX_MODES as readonly string[]).includes(m)),
    networks: (strings(value.networks) ?? []).filter((n): n is NetworkKind => networkOf(n) !== null),
    egress: value.egress === true,
    ...(Array.isArray(value.roots) && value.roots.every((r) => r === null || typeof r === "string") ? { roots: value.roots as (string | null)[] } : {}),
  };
}

/** The `runnerServer` attribute: the server (its id in the cluster tables, and `host:port`) whose runner runs it; null: not recorded. */
export function runnerServerOf(value: unknown): { id: number; label: string } | null {
  if (!isRecord(value) || !Number.isInteger(value.id) || typeof value.label !== "string") return null;
  return { id: value.id as number, label: value.label };
}

const strings = (value: unknown): string[] | null => (Array.isArray(value) ? value.filter((p): p is string => typeof p === "string") : null);

/** The `sandboxView` attribute as the fact; null for anything that is not one (not recorded). */
export function sandboxViewOf(value: unknown): SandboxView | null {
  if (!isRecord(value)) return null;
  return {
    system: strings(value.system),
    image: str(value.image),
    home: str(value.home),
    toolchains: strings(value.toolchains),
    read: strings(value.read) ?? [],
    write: strings(value.write) ?? [],
    ...(value.project === false ? { project: false as const } : {}),
  };
}

/**
 * The facts of a proposal from its log entry's attributes. The sandbox mode is the `sandbox` attribute; a log
 * entry written before modes existed has none and is `read-only` when `readOnly` is set, else `full`.
 */
export function factsOf(a: Record<string, unknown>): ProposalFacts {
  const env: [string, string][] = isRecord(a.env) ? Object.entries(a.env).map(([name, value]) => [name, text(value)]) : [];
  const tty = isRecord(a.tty) && isSize(a.tty.cols) && isSize(a.tty.rows) ? { cols: a.tty.cols as number, rows: a.tty.rows as number } : null;
  let sandbox: SandboxFact;
  if (a.sandbox === undefined || a.sandbox === null) sandbox = { mode: a.readOnly === true ? "read-only" : "full" };
  else if ((SANDBOX_MODES as readonly unknown[]).includes(a.sandbox)) {
    const view = a.sandbox !== "full" ? sandboxViewOf(a.sandboxView) : null;
    const acceptors = a.sandbox === "full" && Array.isArray(a.fullAcceptors) ? a.fullAcceptors.filter((p): p is string => typeof p === "string") : null;
    sandbox = { mode: a.sandbox as SandboxModeName, ...(view ? { view } : {}), ...(acceptors ? { acceptors } : {}) };
  } else sandbox = { mode: "unknown", given: text(a.sandbox) };
  return {
    tool: text(a.tool),
    command: text(a.command),
    root: str(a.root),
    cwd: typeof a.cwd === "string" && a.cwd !== "" && a.cwd !== "." ? a.cwd : null,
    env,
    tty,
    runner: str(a.runner),
    defaultRunner: str(a.defaultRunner),
    runnerClaim: runnerClaimOf(a.runnerClaim),
    ...(poolFactOf(a.pool) ? { pool: poolFactOf(a.pool) } : {}),
    ...(runnerServerOf(a.runnerServer) ? { runnerServer: runnerServerOf(a.runnerServer)!.label } : {}),
    ...(Number.isInteger(a.factsRevision) && (a.factsRevision as number) > 1 ? { factsRevision: a.factsRevision as number } : {}),
    background: a.background === true,
    timeoutMs: typeof a.timeoutMs === "number" && a.timeoutMs > 0 ? a.timeoutMs : null,
    ...(typeof a.defaultTimeoutMs === "number" && a.defaultTimeoutMs >= 0 ? { defaultTimeoutMs: a.defaultTimeoutMs } : {}),
    sandbox,
    network: networkFactOf(a.network),
    ...(egressOf(a.egress) ? { egress: egressOf(a.egress) } : {}),
  };
}

/** Whether an entry is a producer's log entry (the others are its data channels, or plain entries). */
export const isLogEntry = (entry: { path: string }) => entry.path.startsWith("log://");

/** The log entry a data channel belongs to; null for an entry that is no producer's channel. */
export const channelLog = (entry: WireEntry): string | null => str(entry.attributes.log);

/** A data channel entry as a typed `Channel`. */
export function channelView(entry: WireEntry, lastSeq: number | null = null): Channel {
  const a = entry.attributes;
  const channel = int(a.channel) ?? -1;
  return {
    channel,
    name: str(a.name) ?? `channel ${channel}`,
    path: entry.path,
    log: str(a.log) ?? "",
    status: entry.status,
    bytes: entry.bytes ?? 0,
    lines: entry.lines ?? 0,
    lastSeq,
    eofAt: num(a.eof),
  };
}

/** Where it runs, as its runner reported it (the `process` attribute); null: not reported. */
export function processOf(value: unknown): ProcessPlace | null {
  if (!isRecord(value)) return null;
  return { backend: str(value.backend), pid: int(value.pid), container: str(value.container), host: str(value.host) };
}

/** Where a producer stands, from its log entry's status, how it ended and its channels' statuses. */
export function producerState(status: number, outcome: Outcome | null, endStatus: number | null, channels: readonly Pick<Channel, "status">[]): ProducerState {
  if (status === ENTRY.proposed) return "proposed";
  if (status === ENTRY.rejected) return "rejected";
  const open = channels.some((c) => c.status === ENTRY.streaming);
  // Waiting in its pool's queue: every channel at queued (they move to streaming together when a runner takes it).
  if (!open && channels.length > 0 && channels.every((c) => c.status === ENTRY.queued)) return "queued";
  if (open || outcome === null) return open || channels.length > 0 ? "running" : "accepted";
  if (outcome === "aborted") return "aborted";
  const end = endStatus ?? channels[0]?.status ?? status;
  if (end === ENTRY.failed) return "failed";
  if (end === ENTRY.cancelled) return "cancelled";
  return "done";
}

/**
 * A producer from its log entry's stored attributes, with its channel entries when the caller has them. The
 * server sends every producer typed (`producer` in entry/get, entry/list, run/proposal, proposal/list, built
 * by src/store/views.ts), so clients read that; this reads a bag that came without it (a database copy, a
 * test checking the server's mapping against the stored attributes). Without channel entries, the channels are
 * those the log entry's summary lists once the producer ended. Entries of other producers are ignored.
 */
export function producerView(log: WireEntry, channels: readonly WireEntry[] = []): Producer {
  const a = log.attributes;
  const own = channels.filter((c) => channelLog(c) === log.path).map((c) => channelView(c));
  if (own.length === 0 && isRecord(a.channels)) {
    for (const [n, summary] of Object.entries(a.channels)) {
      if (!isRecord(summary)) continue;
      own.push({
        channel: Number(n),
        name: `channel ${n}`,
        path: text(summary.path),
        log: log.path,
        status: int(a.status) ?? log.status,
        bytes: int(summary.bytes) ?? 0,
        lines: int(summary.lines) ?? 0,
        lastSeq: null,
        eofAt: null,
      });
    }
  }
  own.sort((x, y) => x.channel - y.channel);
  const ended = decisionAndEnd(a, str);
  const modelSeen = isRecord(a.modelSeen)
    ? Object.fromEntries(Object.entries(a.modelSeen).filter((e): e is [string, number] => typeof e[1] === "number"))
    : null;
  const extra = Object.fromEntries(Object.entries(a).filter(([key]) => !SPOOL_ATTRIBUTES.has(key)));
  return {
    path: log.path,
    status: log.status,
    state: producerState(log.status, ended.outcome, ended.endStatus, own),
    turn: log.turn,
    slug: str(a.slug),
    loop: int(a.loop),
    process: processOf(a.process),
    modelSeen,
    channels: own,
    extra,
    // Spread last (src/store/producer-row.ts says why).
    ...factsOf(a),
    ...ended,
  };
}

/** A pending proposal (`run/proposal`'s notice, or `proposal/list`'s item) as a typed view: its producer as the server typed it. */
export function proposalView(notice: {
  run: string;
  path: string;
  turn: number;
  producer: Producer;
  loop?: number | null;
  toolCallId?: string | null;
  createdAt?: number | null;
}): ProposalView {
  const { producer } = notice;
  return {
    run: notice.run,
    path: notice.path,
    turn: notice.turn,
    loop: notice.loop ?? producer.loop,
    toolCallId: notice.toolCallId ?? producer.toolCallId,
    createdAt: notice.createdAt ?? null,
    producer,
  };
}

/** An entry as entry/get and entry/list return it: the typed producer of a log entry, the typed channel of a data channel. */
export interface TypedEntry {
  path: string;
  producer: Producer | null;
  channel: Channel | null;
}

/** The producer of a log entry as the server sent it; an entry that is no producer's log entry is an error. */
export function producerOf(entry: Pick<TypedEntry, "path" | "producer">): Producer {
  if (entry.producer === null) throw new Error(`${entry.path} is not a producer's log entry`);
  return entry.producer;
}

/** The producer a log entry or one of its channels belongs to, as a path; null for other entries. */
export const producerPath = (entry: Pick<TypedEntry, "producer" | "channel">): string | null => entry.producer?.path ?? entry.channel?.log ?? null;

/** A run's producers among entry/list's entries (each log entry carries its own, with all its channels), newest first. */
export function producersOf(entries: readonly Pick<TypedEntry, "producer">[]): Producer[] {
  return entries.flatMap((e) => (e.producer ? [e.producer] : [])).reverse();
}

/** Whether it has ended (or was rejected): nothing more will happen to it. */
export const isFinished = (p: Producer) => p.state !== "proposed" && p.state !== "accepted" && p.state !== "running";
