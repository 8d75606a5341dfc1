import { z } from "zod";
import { CancelledNotice, CompactionNotice, FinishedNotice, ProposalNotice, ResolvedNotice, RunStateNotice, StartedNotice, ToolNotice } from "./common.js";
import { byName, notification } from "./define.js";
import {
  ProducerControlResult,
  ProducerEofParams,
  ProducerInputParams,
  ProducerResizeParams,
  ProducerSignalParams,
  RunnerExecParams,
  RunnerExecResult,
} from "./runner.js";

/** Fields every per-channel watcher notification carries. */
const WatchedChannel = z.object({ subscription: z.string(), run: z.string(), path: z.string(), channel: z.number().int() });

/** Every notification, and every server → client request (those with a `reply`), in one list. */
export const NOTIFICATIONS = [
  notification({
    name: "run/proposal",
    description:
      "A proposal waits for a decision. Sent to every connection of the project, and re-sent for each pending proposal when a connection initializes.",
    direction: "server",
    params: ProposalNotice,
  }),
  notification({
    name: "run/resolved",
    description:
      "A proposal was accepted or rejected (by any connection, an always-allow rule, run/abort, or the deadline: decisionTimeoutMs), with who decided and why.",
    direction: "server",
    params: ResolvedNotice,
  }),
  notification({
    name: "run/state",
    description: "A run's status changed, or a step happened (model reply, tool call). Sent to every connection of the project.",
    direction: "server",
    params: RunStateNotice,
  }),
  notification({
    name: "run/progress",
    description: "The model's text as it streams, a delta at a time.",
    direction: "server",
    params: z.object({ run: z.string(), turn: z.number().int(), loop: z.number().int(), delta: z.string() }),
  }),
  notification({
    name: "run/compaction",
    description:
      "The run's conversation is being compacted to stay within the model's context window: `started`, the summary as it streams (`chunk`), then `completed` (how many messages the summary replaced in the model's requests; the whole conversation stays stored) or `failed`.",
    direction: "server",
    params: CompactionNotice,
  }),
  notification({
    name: "run/tool",
    description:
      "One of the model's tool calls: running, waiting on its proposal (with the log path), then completed or failed with what the model was answered. Sent to every connection of the project.",
    direction: "server",
    params: ToolNotice,
  }),
  notification({
    name: "stream/started",
    description: "An accepted producer's owner began running it; `process` says where. Sent to every connection of the project.",
    direction: "server",
    params: StartedNotice,
  }),
  notification({
    name: "stream/cancelled",
    description: "A client cancelled a producer; its owner must kill the work. Sent to every connection of the project.",
    direction: "server",
    params: CancelledNotice,
  }),
  notification({
    name: "stream/finished",
    description: "A producer ended: completed, aborted (also when its owner was lost), or cancelled. Sent to every connection of the project.",
    direction: "server",
    params: FinishedNotice,
  }),
  notification({
    name: "stream/data",
    description: "A chunk of a watched channel, in seq order, replayed or live.",
    direction: "server",
    params: WatchedChannel.extend({ seq: z.number().int(), chunk: z.string(), encoding: z.enum(["utf8", "base64"]) }),
  }),
  notification({
    name: "stream/end",
    description: "A watched channel finished; `lastSeq` is the last chunk sent. The subscription ends with its last channel.",
    direction: "server",
    params: WatchedChannel.extend({ lastSeq: z.number().int(), status: z.number().int(), exit_code: z.number().int().nullable().optional() }),
  }),
  notification({
    name: "stream/lagged",
    description: "The watcher fell too far behind and was dropped; resubscribe with `after` = `lastSeq[channel]`.",
    direction: "server",
    params: z.object({ subscription: z.string(), run: z.string(), path: z.string(), lastSeq: z.record(z.string(), z.number().int()) }),
  }),
  notification({
    name: "runner/exec",
    description:
      "Asks the runner to execute an accepted proposal it now owns: stream stdout and stderr into `channels` with seq, then stream/completed or stream/aborted. The reply comes once the process has started (or failed to).",
    direction: "server",
    params: RunnerExecParams,
    reply: RunnerExecResult,
  }),
  notification({
    name: "producer/input",
    description:
      "Relays stream/input to the producer's owner: write `data` (base64) to the command's stdin or terminal. A `seq` the owner already applied is acknowledged without writing again.",
    direction: "server",
    params: ProducerInputParams,
    reply: ProducerControlResult,
  }),
  notification({
    name: "producer/eof",
    description: "Relays stream/eof to the producer's owner: close the command's stdin.",
    direction: "server",
    params: ProducerEofParams,
    reply: ProducerControlResult,
  }),
  notification({
    name: "producer/signal",
    description: "Relays stream/signal to the producer's owner: send the signal to the command's process group.",
    direction: "server",
    params: ProducerSignalParams,
    reply: ProducerControlResult,
  }),
  notification({
    name: "producer/resize",
    description: "Relays stream/resize to the producer's owner: resize the command's terminal.",
    direction: "server",
    params: ProducerResizeParams,
    reply: ProducerControlResult,
  }),
] as const;

/** Every notification keyed by its name. */
export const notifications = byName(NOTIFICATIONS);
export type NotificationName = keyof typeof notifications;
/** Every notification (and server → client request) with the params it carries. */
export type SpoolNotifications = { [N in NotificationName]: z.output<(typeof notifications)[N]["params"]> };
