// Shapes several requests and notifications share: run aliases, entry paths, statuses, durations, a run,
// an entry, the notices. zod only, no Node imports.
import { z } from "zod";
import { BACKEND_NAMES } from "./backends.js";
import { TRANSPORTS } from "./roles.js";
import { BudgetReached, Channel, Producer, RunView } from "./views-schemas.js";

/** Run aliases: what they may hold (RunAlias; also read as it is by the stream's quick check, methods/stream.ts). */
export const RUN_ALIAS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Entry paths: `scheme://rest`, 1-1024 characters (EntryPath). */
export const ENTRY_PATH = /^[a-z][a-z0-9+.-]*:\/\/[^\0]*$/;
export const ENTRY_PATH_MAX = 1024;
/** Standard base64 with its padding: what a chunk sent with `encoding: "base64"` must be. */
export const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Schemas shared by several methods; each method file builds its params from these. */
export const RunAlias = z
  .string()
  .regex(RUN_ALIAS, "a run alias is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
  .describe("Run alias, unique within the project");

export const EntryPath = z
  .string()
  .min(1)
  .max(ENTRY_PATH_MAX)
  .regex(ENTRY_PATH, "an entry path looks like scheme://rest")
  .describe("Entry path, e.g. log://turn_1/sh/ls or sh://turn_1/ls_1");

/** A runner as a request names it (a name from runner/list, or "self" where a method allows it). */
/** A runner's name, or a pool (`{pool}` configured, `{labels}` any runner carrying them): pools.ts. */
export { RunnerRef } from "./pools.js";

export const Status = z.number().int().min(100).max(599).describe("HTTP-like status code");

export const Attributes = z.record(z.string(), z.unknown()).describe("Free-form JSON attributes");

/** A run as the methods return it: the typed view (views-schemas.ts), its status and title described for the docs. */
export const Run = RunView.extend({
  status: Status,
  title: z.string().nullable().describe("What lists show: given at run/create, else the first line of the first prompt"),
});

export const EntrySummary = z.object({
  path: z.string(),
  status: Status,
  turn: z.number().int(),
  attributes: Attributes.describe(
    "The entry's attributes as stored; for a producer's log entry or channel the same facts, typed, are in `producer` or `channel` (read those; a plugin's own attributes are also in `producer.extra`)",
  ),
  producer: Producer.nullable().describe(
    "A producer's log entry (log://…): its producer, every field Spool sets named and typed, with its channels; null for other entries",
  ),
  channel: Channel.nullable().describe("A producer's data channel: its typed view; null for other entries"),
  bytes: z.number().int(),
  lines: z.number().int(),
  streamed: z.boolean(),
  createdAt: z.number().int().optional().describe("When the entry was made (ms since the epoch)"),
  updatedAt: z.number().int().optional().describe("When its status or facts last changed (ms since the epoch)"),
});

export type RunOut = z.output<typeof Run>;
export type EntrySummaryOut = z.output<typeof EntrySummary>;

export const ResolvedChannel = z.object({ channel: z.number().int(), name: z.string(), path: z.string(), status: Status });

/** Where an accepted command waits for a runner: its queue and its place in it when it was accepted. */
export const QueuedPlace = z.object({
  pool: z.string().describe("The queue it waits in: `pool:NAME`, `labels:k=v,…` or `runner:NAME`"),
  position: z.number().int().min(1).describe("Its place in that queue when it was accepted (1: next)"),
});

/** `run/proposal`: a proposal waits for a decision. */
export const ProposalNotice = z.object({
  run: z.string(),
  path: z.string(),
  tool: z.string(),
  command: z.string(),
  attributes: Attributes.describe("The log entry's attributes as stored (the same facts, typed, are in `producer`)"),
  producer: Producer.describe("The proposal's producer, every field Spool sets named and typed"),
  turn: z.number().int(),
  loop: z.number().int().nullable().describe("The loop (its number) whose model made the proposal; null for a client's proposal"),
  toolCallId: z.string().nullable().describe("The model's tool call the proposal answers; null for a client's proposal"),
  createdAt: z.number().int().describe("When it was proposed, by the server's clock (ms since the epoch)"),
  expiresAt: z
    .number()
    .int()
    .nullable()
    .optional()
    .describe("When the deadline (decisionTimeoutMs) rejects it if nobody decides, by the server's clock (ms since the epoch); null: no deadline"),
});

/** How a decision was made, each its own value (the audit trail records it). */
export const DECISION_HOWS = ["key", "flag", "rule", "deadline", "abort", "revoked"] as const;

/** The kinds of resolver: a client's connection, an "always allow" rule, run/abort, the deadline, or a revocation of the proposer. */
export const RESOLVER_KINDS = ["connection", "rule", "abort", "deadline", "revoked"] as const;

/** Who resolved a proposal: a client's connection, an "always allow" rule, run/abort, the deadline, or a revocation. */
export const Resolver = z.object({
  kind: z
    .enum(RESOLVER_KINDS)
    .describe(
      "Who decided: a client, an always-allow rule, run/abort, the deadline (decisionTimeoutMs), or the revocation of the proposer's credential (token/revoke withdraws its waiting proposals)",
    ),
  connectionId: z.string().nullable().describe("The deciding connection (kind connection)"),
  client: z.string().nullable().describe("Its client name, or the name of whoever set the rule"),
  rule: z.number().int().nullable().describe("The rule's id (kind rule)"),
  transport: z
    .enum(TRANSPORTS)
    .optional()
    .describe(
      "How the deciding connection reached the server, as the server verified it (kind connection; kind revoked: the revoking one's); `client` is its claim",
    ),
  how: z
    .enum(DECISION_HOWS)
    .optional()
    .describe(
      "How it was decided: a person's key (`key`, what a client claims by default), a flag given beforehand (`flag`, spool act --yes), a stored rule (`rule`), the deadline (`deadline`), run/abort (`abort`) or the proposer's credential revoked (`revoked`: withdrawn)",
    ),
});

/** `run/resolved`: a proposal was accepted or rejected. */
export const ResolvedNotice = z.object({
  run: z.string(),
  path: z.string(),
  decision: z.enum(["accept", "reject"]),
  status: Status,
  runner: z.string().nullable(),
  resolvedBy: z
    .string()
    .describe(
      "Who decided: a principal's name and its client's (`alice via spool-cli`; the home's token file is `admin`; for a withdrawal by a revocation, the revoking one's), a rule, or run/abort",
    ),
  resolver: Resolver,
  reason: z.string().nullable(),
  channels: z.array(ResolvedChannel),
  queued: QueuedPlace.optional().describe("Accepted while no runner of its pool was free: the queue it waits in (runner/queue lists them)"),
  loop: z.number().int().nullable().describe("The loop whose model made the proposal; null for a client's proposal"),
  toolCallId: z.string().nullable().describe("The model's tool call the proposal answers; null for a client's proposal"),
});

/** `run/tool`: one of the model's tool calls started, waits on a proposal, or was answered. */
export const ToolNotice = z.object({
  run: z.string(),
  loop: z.number().int().describe("The loop the call belongs to"),
  turn: z.number().int(),
  id: z.string().describe("The tool call's id, unique in the run"),
  tool: z.string(),
  arguments: Attributes.describe("The call's arguments ({} when they were not one JSON object)"),
  status: z
    .enum(["running", "waiting", "completed", "failed"])
    .describe("running: being run; waiting: its proposal waits for a decision; completed / failed: the model has its answer"),
  path: z.string().nullable().describe("The producer's log entry (sh, env, wait), when there is one"),
  result: z.string().nullable().describe("What the model was answered (completed / failed)"),
});

/** `run/compaction`: the conversation is compacted (before the window fills, or after the provider said it was too long). */
export const CompactionNotice = z.object({
  run: z.string(),
  loop: z.number().int(),
  turn: z.number().int(),
  id: z.string().describe("The compaction's id, unique in the run (the summary message's `compaction` in run/history)"),
  phase: z.enum(["started", "chunk", "completed", "failed"]),
  reason: z.enum(["window", "too long"]).describe("window: the request neared the context window; too long: the provider refused it"),
  delta: z.string().optional().describe("chunk: the summary's next text"),
  summary: z.string().optional().describe("completed: the whole summary"),
  replaced: z.number().int().optional().describe("completed: the messages the summary replaced in the model's requests"),
  tokensBefore: z.number().int().optional().describe("The request's estimated tokens before"),
  tokensAfter: z.number().int().optional().describe("completed: after"),
  error: z.string().optional().describe("failed: why"),
});

/** `stream/started`: the owner began executing an accepted producer. */
export const StartedNotice = z.object({
  run: z.string(),
  path: z.string(),
  runner: z.string(),
  process: z
    .object({
      backend: z.string().describe(BACKEND_NAMES.join(", ")),
      pid: z.number().int().optional(),
      container: z.string().optional(),
      host: z.string().optional(),
    })
    .describe("Where it runs, as its runner reported it"),
});

/** `stream/cancelled`: someone asked to stop a producer; its owner kills the work. */
export const CancelledNotice = z.object({ run: z.string(), path: z.string(), reason: z.string() });

/** `stream/finished`: a producer ended (completed, aborted, cancelled, or its owner was lost). */
export const FinishedNotice = z.object({
  run: z.string(),
  path: z.string(),
  status: Status,
  outcome: z.enum(["completed", "aborted", "cancelled"]),
  exit_code: z.number().int().nullable().optional(),
  signal: z.string().nullable().optional(),
  reason: z.string().optional(),
});

/** The events `run/state` tells of. */
export const RUN_EVENTS = [
  "created",
  "prompt queued",
  "loop started",
  "model call",
  "model retry",
  "model replied",
  "tool call",
  "waiting on a proposal",
  "loop finished",
  "loop failed",
  "idle",
  "aborted",
  "budget reached",
  "budget raised",
] as const;
export type RunEvent = (typeof RUN_EVENTS)[number];

/** `run/state`: a run's status changed or a step happened. */
export const RunStateNotice = z
  .object({
    run: z.string(),
    status: Status,
    turn: z.number().int(),
    loop: z
      .object({ seq: z.number().int(), status: Status })
      .nullable()
      .describe("The loop the event is about (for run-wide events, the oldest open loop); null when none is"),
    event: z
      .enum(RUN_EVENTS)
      .describe(
        "What happened: created, prompt queued, loop started, model call, model retry, model replied, tool call, waiting on a proposal, loop finished, loop failed, idle, aborted, budget reached (the run paused), budget raised (it goes on)",
      ),
    // The fields an event adds (each is set by the events named, absent otherwise).
    prompt: z.string().optional().describe("loop started: the prompt the loop answers"),
    summary: z.string().optional().describe("loop finished: the model's summary (done) or its last reply"),
    error: z.string().optional().describe("loop failed: why"),
    reason: z.string().optional().describe("aborted: the reason given; model retry: why the call is retried"),
    attempt: z.number().int().optional().describe("model retry: which attempt comes next"),
    delayMs: z.number().optional().describe("model retry: how long before it"),
    text: z.string().optional().describe("model replied: the reply's text"),
    toolCalls: z.array(z.string()).optional().describe("model replied: the names of the tools it calls"),
    finishReason: z.string().optional().describe("model replied: why the model stopped (stop, length, tool_calls)"),
    usage: z
      .object({
        promptTokens: z.number().int(),
        completionTokens: z.number().int(),
        totalTokens: z.number().int(),
        cacheReadTokens: z.number().int().optional(),
        cacheWriteTokens: z.number().int().optional(),
      })
      .optional()
      .describe("model replied: the tokens the call took, when the model said"),
    tool: z.string().optional().describe("tool call, waiting on a proposal: the tool's name"),
    path: z.string().optional().describe("tool call, waiting on a proposal: the command's path, when it has one"),
    budget: BudgetReached.optional().describe("budget reached: which budget, its limit and what was used"),
  })
  .strict();

/** The fields a `run/state` event adds beside run, status, turn, loop and event. */
export type RunStateFields = Omit<z.input<typeof RunStateNotice>, "run" | "status" | "turn" | "loop" | "event">;

const DURATION_UNITS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
const DURATION_STRING = /^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$/;

/** Milliseconds from a human-readable duration such as "1.2s", "350ms" or "1m30s". */
export function parseDuration(text: string): number {
  let total = 0;
  for (const [, value, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) total += Number(value) * DURATION_UNITS[unit!]!;
  return Math.round(total);
}

/** How long a producer ran: milliseconds, or the earlier runtime's readable string ("1.2s"); stored as milliseconds. */
export const Duration = z
  .union([
    z.number().int().min(0),
    z.string().max(64).regex(DURATION_STRING, 'a duration is milliseconds or a string like "1.2s", "350ms", "1m30s"').transform(parseDuration),
  ])
  .describe('Milliseconds the producer ran, or a readable duration such as "1.2s"');

/** A W3C trace context (`traceparent`, version 00): the caller's span, which the work it asks for continues (SPEC §15 Traces). */
export const Traceparent = z
  .string()
  .regex(/^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/, "a W3C traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>")
  .describe("The caller's W3C trace context: the proposal's trace continues it");
