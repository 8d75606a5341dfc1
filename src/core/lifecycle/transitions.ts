import type { ErrorName } from "../../rpc/errors.js";
import { ENTRY } from "../status.js";

/*
 * The producer lifecycle as data: for each state and each operation, the state afterwards (with what
 * the change announces and hooks) or the error it is refused with. The lifecycle's stages (the files beside
 * this one) ask this table before they act, and test/core/transitions.test.ts drives every cell through the
 * real code against it, so the table is the one description of the state machine.
 */

/**
 * A producer's state as the transition table knows it: its log entry's status and, once accepted, its data
 * channels' status. Not the wire's ProducerState (src/protocol), the finer word clients show.
 */
export type TransitionState = "proposed" | "queued" | "streaming" | "done" | "failed" | "cancelled" | "rejected";

export type Operation = "accept" | "reject" | "take" | "start" | "append" | "complete" | "abort" | "cancel" | "lose" | "claim";

/**
 * Who asks. `owner`: the producer's owner (for `claim`, a caller showing the right resume token);
 * `other`: any other connection of the project (for `claim`, a wrong token).
 */
export type Caller = "owner" | "other";

/** The statuses (log entry, data channels) that make each state; null: no channels yet (or ever). */
export const STATE_STATUSES: Record<TransitionState, readonly [log: number, channels: number | null]> = {
  proposed: [ENTRY.proposed, null],
  queued: [ENTRY.done, ENTRY.queued],
  streaming: [ENTRY.done, ENTRY.streaming],
  done: [ENTRY.done, ENTRY.done],
  failed: [ENTRY.done, ENTRY.failed],
  cancelled: [ENTRY.done, ENTRY.cancelled],
  rejected: [ENTRY.rejected, null],
};

/** Who may ask for each operation; `owner` ones answer another caller from their `other` cells. */
export const OPERATIONS: Record<Operation, { by: "anyone" | "owner" | "server"; does: string }> = {
  accept: {
    by: "anyone",
    does: "a person (or an always-allow rule) accepts the proposal: a free runner of its pool (or the accepting connection) owns it, else it waits in the pool's queue",
  },
  reject: {
    by: "anyone",
    does: "a person (or run/abort, the deadline, or the revocation of its proposer's credential: withdrawn) rejects the proposal",
  },
  take: { by: "server", does: "a free runner of its pool takes the queued command, once, whichever server it is attached to; it owns it" },
  start: { by: "server", does: "the runner's reply to runner/exec: where the work runs is recorded" },
  append: { by: "owner", does: "one chunk of output into one channel" },
  complete: { by: "owner", does: "the work ended: 200, or 500 on a non-zero exit or a signal" },
  abort: { by: "owner", does: "the owner gave up on the work" },
  cancel: { by: "anyone", does: "anyone in the project stops it; its owner kills the work" },
  lose: { by: "server", does: "the owner never came back (or the server restarted, or dispatch failed)" },
  claim: { by: "owner", does: "a connection showing the resume token becomes the owner" },
};

/** What an operation does: a new (or the same) state and what it announces and hooks, or a refusal. */
export type Cell =
  | {
      /**
       * The state afterwards; two where the outcome picks: `complete` (exit 0 → done, else failed), `accept` (a free
       * runner or the accepting connection → streaming, else queued).
       */
      to: TransitionState | readonly [TransitionState, TransitionState];
      /** Notifications to the project, exactly once each, in any order. */
      notices: readonly string[];
      /** Hooks, in order. */
      hooks: readonly string[];
    }
  | { error: ErrorName };

/** The same cell for any caller, or one for the owner and one for everybody else. */
export type Entry = Cell | { owner: Cell; other: Cell };

const refuse = (error: ErrorName): Cell => ({ error });
/** Nothing changes and nothing is said (idempotent finishing, claims of finished work). */
const stay = (state: TransitionState): Cell => ({ to: state, notices: [], hooks: [] });
const RESOLVED = { notices: ["run/resolved"], hooks: ["entry:status"] } as const;
const FINISHED = { notices: ["stream/finished"], hooks: ["entry:status", "entry:status"] } as const;
/** A finished producer: every finishing call reports it and changes nothing; it takes no more output. */
const finished = (state: TransitionState): Record<Operation, Entry> => ({
  accept: refuse("CONFLICT"),
  reject: refuse("CONFLICT"),
  take: refuse("CONFLICT"),
  start: stay(state),
  append: refuse("STREAM_CLOSED"),
  complete: stay(state),
  abort: stay(state),
  cancel: stay(state),
  lose: stay(state),
  claim: { owner: stay(state), other: refuse("NOT_OWNER") },
});

/** What a producer without channels (proposed, or rejected) answers to the operations on channels. */
const NO_CHANNELS = {
  append: refuse("NOT_FOUND"),
  complete: refuse("CONFLICT"),
  abort: refuse("CONFLICT"),
  cancel: refuse("CONFLICT"),
  lose: refuse("CONFLICT"),
  claim: refuse("NOT_OWNER"),
} as const;

/** Every operation from every state (a proposal has no channels: nothing to append to, finish or claim). */
export const TRANSITIONS: Record<TransitionState, Record<Operation, Entry>> = {
  proposed: {
    accept: { to: ["streaming", "queued"], ...RESOLVED },
    reject: { to: "rejected", ...RESOLVED },
    take: refuse("CONFLICT"),
    start: stay("proposed"),
    ...NO_CHANNELS,
  },
  // Accepted, waiting for a runner: nobody owns it, nothing runs; anyone may cancel it, and a free runner takes it.
  queued: {
    accept: refuse("CONFLICT"),
    reject: refuse("CONFLICT"),
    take: { to: "streaming", notices: [], hooks: ["entry:status", "entry:status"] },
    start: stay("queued"),
    append: refuse("NOT_OWNER"),
    complete: refuse("NOT_OWNER"),
    abort: refuse("NOT_OWNER"),
    cancel: { to: "cancelled", notices: ["stream/cancelled", "stream/finished"], hooks: FINISHED.hooks },
    lose: { to: "cancelled", ...FINISHED },
    claim: refuse("NOT_OWNER"),
  },
  streaming: {
    accept: refuse("CONFLICT"),
    reject: refuse("CONFLICT"),
    take: refuse("CONFLICT"),
    start: { to: "streaming", notices: ["stream/started"], hooks: ["producer:started"] },
    append: { owner: stay("streaming"), other: refuse("NOT_OWNER") },
    complete: { owner: { to: ["done", "failed"], ...FINISHED }, other: refuse("NOT_OWNER") },
    abort: { owner: { to: "cancelled", ...FINISHED }, other: refuse("NOT_OWNER") },
    cancel: { to: "cancelled", notices: ["stream/cancelled", "stream/finished"], hooks: FINISHED.hooks },
    lose: { to: "cancelled", ...FINISHED },
    claim: { owner: stay("streaming"), other: refuse("NOT_OWNER") },
  },
  done: finished("done"),
  failed: finished("failed"),
  cancelled: finished("cancelled"),
  rejected: {
    accept: refuse("CONFLICT"),
    reject: refuse("CONFLICT"),
    take: refuse("CONFLICT"),
    start: stay("rejected"),
    ...NO_CHANNELS,
  },
};

/** What `operation` by `caller` does from `state`. */
export function transition(state: TransitionState, operation: Operation, caller: Caller = "owner"): Cell {
  const entry = TRANSITIONS[state][operation];
  return "owner" in entry ? entry[caller] : entry;
}

/** The error a cell refuses with; undefined when the operation goes ahead. */
export const refusal = (cell: Cell): ErrorName | undefined => ("error" in cell ? cell.error : undefined);

/**
 * The state of a producer from its log entry's status and its channels' statuses: streaming while any
 * channel is open. A combination no operation produces is an error, never taken for a state.
 */
export function stateOf(logStatus: number, channelStatuses: readonly number[]): TransitionState {
  // Streaming while any channel is open (the input channel opens later than the others, and queued never mixes with streaming).
  const channels = channelStatuses.includes(ENTRY.streaming) ? ENTRY.streaming : (channelStatuses[0] ?? null);
  for (const [state, [log, channel]] of Object.entries(STATE_STATUSES) as [TransitionState, readonly [number, number | null]][]) {
    if (log === logStatus && channel === channels) return state;
  }
  throw new Error(`a producer with its log at ${logStatus} and its channels at ${channelStatuses.join(", ") || "none"} is in no known state`);
}
