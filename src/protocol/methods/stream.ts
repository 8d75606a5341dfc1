import { z } from "zod";
import { Duration, ENTRY_PATH, ENTRY_PATH_MAX, EntryPath, RUN_ALIAS, RunAlias, Status } from "../common.js";
import { request } from "../define.js";
import { ControlSignal, TtySize } from "../runner.js";
import { ENTRY } from "../status.js";

/** The params every call about one producer starts with. */
export const ProducerParams = { run: RunAlias, path: EntryPath.describe("The producer's log entry path") };

/** What a command in network mode allowlist reached and was refused (`host:port`, each once, at most 64 of each). */
const EgressReached = z
  .strictObject({
    allowed: z.array(z.string().max(300)).max(64).describe("Hosts the egress proxy connected it to"),
    blocked: z.array(z.string().max(300)).max(64).describe("Hosts the egress proxy refused"),
  })
  .optional()
  .describe("Network mode allowlist: what the command reached and was refused; recorded on the log entry (egressReached) and in the audit trail");

/** What the finishing calls (completed, aborted, cancel) answer. */
export const FinishResult = z.object({
  path: z.string(),
  status: Status.describe("The channels' terminal status"),
  changed: z.boolean().describe("False when the producer had already finished: nothing was changed"),
  channels: z.array(z.object({ channel: z.number().int(), path: z.string(), status: Status, bytes: z.number().int(), lines: z.number().int() })),
});

export const StreamParams = z.strictObject({
  run: RunAlias,
  path: EntryPath.describe("The producer's log entry path"),
  channel: z.number().int().min(1).describe("1 stdout, 2 stderr, higher for producer-specific streams"),
  chunk: z.string().describe("The bytes to append, encoded as `encoding` says"),
  seq: z.number().int().min(1).optional().describe("The channel's chunk number, from 1; a repeat with the same bytes is acknowledged without appending"),
  encoding: z.enum(["utf8", "base64"]).optional().describe("utf8 (default) or base64 for binary data"),
});

export const StreamAck = z.object({
  channel: z.number().int(),
  seq: z.number().int().describe("The seq this chunk was stored (or had been stored) under"),
  bytes: z.number().int().describe("Bytes the channel holds after the call"),
  duplicate: z.boolean().describe("True when this seq had already been appended with the same bytes; nothing was written"),
});

const STREAM_KEYS = new Set(Object.keys(StreamParams.shape));
const ACK_KEYS = Object.keys(StreamAck.shape);

/**
 * True only when StreamParams would accept these params as they are: the same keys and rules (RUN_ALIAS,
 * ENTRY_PATH, the ranges), checked without zod's copy of the object (the stream's quick path, one call a chunk).
 * test/protocol holds it to the schema on the same inputs.
 */
export function isStreamParams(p: unknown): p is z.output<typeof StreamParams> {
  if (typeof p !== "object" || p === null || Array.isArray(p) || Object.getPrototypeOf(p) !== Object.prototype) return false;
  for (const key in p) if (!STREAM_KEYS.has(key)) return false;
  const { run, path, channel, chunk, seq, encoding } = p as Record<string, unknown>;
  return (
    typeof run === "string" &&
    RUN_ALIAS.test(run) &&
    typeof path === "string" &&
    path.length >= 1 &&
    path.length <= ENTRY_PATH_MAX &&
    ENTRY_PATH.test(path) &&
    Number.isSafeInteger(channel) &&
    (channel as number) >= 1 &&
    typeof chunk === "string" &&
    (seq === undefined || (Number.isSafeInteger(seq) && (seq as number) >= 1)) &&
    (encoding === undefined || encoding === "utf8" || encoding === "base64")
  );
}

/** True only when a result is a StreamAck exactly as the schema gives it back: its keys in its order, each of its type. */
export function isStreamAck(r: unknown): boolean {
  if (typeof r !== "object" || r === null || Object.getPrototypeOf(r) !== Object.prototype) return false;
  let i = 0;
  for (const key in r) if (key !== ACK_KEYS[i++]) return false;
  const { channel, seq, bytes, duplicate } = r as Record<string, unknown>;
  return i === ACK_KEYS.length && Number.isSafeInteger(channel) && Number.isSafeInteger(seq) && Number.isSafeInteger(bytes) && typeof duplicate === "boolean";
}

export const stream = request({
  name: "stream",
  role: "runner",
  description: "Appends a chunk to one data channel of an accepted producer; only the producer's owner may. Costs the same whatever the channel already holds.",
  params: StreamParams,
  result: StreamAck,
});

export const streamCompleted = request({
  name: "stream/completed",
  role: "runner",
  description:
    "The owner reports the producer finished: every channel becomes 200 (exit 0 or no exit code) or 500 (non-zero exit or a signal). Idempotent: once finished, it reports the status and changes nothing.",
  params: z.strictObject({
    ...ProducerParams,
    exit_code: z.number().int().nullable().optional().describe("Exit code; null or absent when unknown"),
    signal: z
      .string()
      .regex(/^SIG[A-Z0-9]+$/)
      .nullable()
      .optional()
      .describe("Signal that ended the process, e.g. SIGKILL"),
    duration: Duration.optional(),
    egress: EgressReached,
  }),
  result: FinishResult,
});

export const streamAborted = request({
  name: "stream/aborted",
  role: "runner",
  description: "The owner gave up (killed, timed out, failed to start): channels become 499 with the reason. Idempotent.",
  params: z.strictObject({ ...ProducerParams, reason: z.string().max(4096).optional(), duration: Duration.optional(), egress: EgressReached }),
  result: FinishResult,
});

export const streamCancel = request({
  name: "stream/cancel",
  role: "agent",
  ownRuns: true,
  description:
    "Anyone in the project asks to stop a producer: channels become 499 at once (the log records who cancelled, `cancelledBy`, the reason and the duration since it was accepted) and `stream/cancelled` goes to every connection of the project, so the owner kills the work. Idempotent.",
  params: z.strictObject({ ...ProducerParams, reason: z.string().max(4096).optional() }),
  result: FinishResult,
});

export const streamClaim = request({
  name: "stream/claim",
  role: "runner",
  description:
    'Takes ownership of a producer with its resume token (from run/resolve with runner "self"), e.g. after a reconnect or a server restart; the reply has each channel\'s last stored seq, to resend what follows.',
  params: z.strictObject({ ...ProducerParams, token: z.string().min(16).max(200).describe("The resume token run/resolve returned") }),
  result: z.object({
    path: z.string(),
    status: Status.describe(`${ENTRY.streaming} while the producer is open (you now own it); its terminal status otherwise`),
    channels: z.array(z.object({ channel: z.number().int(), path: z.string(), status: Status, lastSeq: z.number().int() })),
  }),
});

export const streamSubscribe = request({
  name: "stream/subscribe",
  role: "viewer",
  description:
    "Watches a producer's channels (or one): replays stored chunks after `after` as `stream/data`, then pushes new ones live, then `stream/end` per channel.",
  params: z.strictObject({
    run: RunAlias,
    path: EntryPath.describe("The producer's log entry path"),
    channel: z.number().int().min(0).optional().describe("Only this channel (default: all); 0 is the input clients sent, once there is some"),
    after: z.number().int().min(0).optional().describe("Replay chunks with seq greater than this (default 0: everything)"),
    encoding: z.enum(["utf8", "base64"]).optional().describe("How `stream/data` carries chunks: utf8 (default) or base64 for exact bytes"),
  }),
  result: z.object({
    subscription: z.string(),
    channels: z.array(
      z.object({
        channel: z.number().int(),
        path: z.string(),
        status: Status,
        lastSeq: z.number().int(),
        bytes: z.number().int().describe("Bytes the channel held up to lastSeq (read together with it)"),
      }),
    ),
  }),
});

export const streamUnsubscribe = request({
  name: "stream/unsubscribe",
  role: "viewer",
  description: "Stops a subscription of this connection.",
  params: z.strictObject({ subscription: z.string().min(1) }),
  result: z.object({ unsubscribed: z.literal(true) }),
});

export const streamInput = request({
  name: "stream/input",
  role: "agent",
  ownRuns: true,
  description:
    "Anyone in the project sends bytes to a running producer's stdin (or terminal): the server relays them to the producer's owner, then stores them as its channel 0. Ordered per producer; a repeated `seq` with the same bytes is acknowledged without sending them again.",
  params: z.strictObject({
    ...ProducerParams,
    data: z.string().min(1).describe("The bytes, encoded as `encoding` says (at most limits.maxInputBytes decoded)"),
    encoding: z.enum(["utf8", "base64"]).optional().describe("utf8 (default) or base64 for other bytes"),
    seq: z.number().int().min(1).optional().describe("Channel 0's next chunk number, for safe retries; without it the input gets the next one"),
  }),
  result: z.object({
    path: z.string().describe("The producer's input channel (channel 0)"),
    seq: z.number().int().describe("The seq this input was stored (or had been stored) under; only sent if the producer ended as its owner took it"),
    bytes: z.number().int().describe("Bytes of input the producer has been sent in all"),
    duplicate: z.boolean().describe("True when this seq had already been sent with the same bytes; nothing was sent again"),
  }),
});

export const streamEof = request({
  name: "stream/eof",
  role: "agent",
  ownRuns: true,
  description:
    "Anyone in the project ends a running producer's input: its stdin pipe is closed (later input is STREAM_CLOSED); under a terminal it types ^D. Relayed to the producer's owner.",
  params: z.strictObject(ProducerParams),
  result: z.object({
    path: z.string().describe("The producer's input channel (channel 0)"),
    changed: z.boolean().describe("False when its input had already been ended"),
  }),
});

export const streamSignal = request({
  name: "stream/signal",
  role: "agent",
  ownRuns: true,
  description:
    "Anyone in the project sends a signal to a running producer's process group (INT, TERM, HUP, QUIT, USR1, USR2, WINCH, KILL), relayed to its owner. The producer ends only if the command does.",
  params: z.strictObject({ ...ProducerParams, signal: ControlSignal.describe("The signal's name without SIG") }),
  result: z.object({ path: z.string(), signal: ControlSignal }),
});

export const streamResize = request({
  name: "stream/resize",
  role: "agent",
  ownRuns: true,
  description:
    "Anyone in the project resizes the terminal of a producer proposed with `tty` (UNSUPPORTED for one without), relayed to its owner; the log's `tty` attribute keeps the size.",
  params: z.strictObject({ ...ProducerParams, ...TtySize.shape }),
  result: z.object({ path: z.string(), cols: z.number().int(), rows: z.number().int() }),
});
