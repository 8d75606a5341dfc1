/**
 * Every status Spool writes, named once (SPEC.md, paths and status codes), with the words people read next to them. Part of the
 * wire: the server writes these numbers, every client reads them (and the words) from here. Nothing outside
 * src/core writes a status number; the store is told which ones to use.
 */

/** Entry statuses: log entries (proposals) and data channels. */
export const ENTRY = {
  /** A data channel of an accepted command that waits in its pool's queue for a free runner (nothing runs yet). */
  queued: 100,
  /** A data channel that is being written. */
  streaming: 102,
  /** A finished channel (exit 0 or no exit code); an accepted proposal's log entry. */
  done: 200,
  /** A proposal waiting for a person. */
  proposed: 202,
  /** A rejected proposal. */
  rejected: 403,
  /** Aborted, cancelled, or its owner lost. */
  cancelled: 499,
  /** A non-zero exit or a signal. */
  failed: 500,
} as const;

/** Run and loop statuses. `paused`: a budget was reached; no model call until a person raises it (or stops the run). */
export const RUN = { queued: 100, running: 102, waiting: 202, paused: 402, done: 200, aborted: 499, failed: 500 } as const;

/** Both groups: `STATUS.entry.proposed`, `STATUS.run.waiting`. */
export const STATUS = { entry: ENTRY, run: RUN } as const;

export type EntryStatus = (typeof ENTRY)[keyof typeof ENTRY];
export type RunStatus = (typeof RUN)[keyof typeof RUN];

/** Statuses of a run or loop that has not finished. */
export const OPEN_RUN: readonly number[] = [RUN.queued, RUN.running, RUN.waiting, RUN.paused];

/** Statuses of a data channel that has not ended: queued (waiting for a runner) or streaming. */
export const OPEN_CHANNEL: readonly number[] = [ENTRY.queued, ENTRY.streaming];

/** Whether a data channel at `status` has not ended yet (queued or streaming): watchers wait for more, the producer is not over. */
export const channelOpen = (status: number): boolean => status === ENTRY.streaming || status === ENTRY.queued;

const ENTRY_WORDS: Record<number, string> = {
  [ENTRY.queued]: "queued",
  [ENTRY.streaming]: "running",
  [ENTRY.done]: "done",
  [ENTRY.proposed]: "proposed",
  [ENTRY.rejected]: "rejected",
  [ENTRY.cancelled]: "cancelled",
  [ENTRY.failed]: "failed",
};

/** The word people read next to an entry status (CLI, web page, docs). */
export function entryStatusWord(status: number): string {
  return ENTRY_WORDS[status] ?? `status ${status}`;
}

const RUN_WORDS: Record<number, string> = {
  [RUN.queued]: "queued",
  [RUN.running]: "running",
  [RUN.waiting]: "waiting",
  [RUN.paused]: "paused",
  [RUN.done]: "done",
  [RUN.aborted]: "aborted",
  [RUN.failed]: "failed",
};

/** The word people read next to a run or loop status (CLI, web page, docs). */
export function runStatusWord(status: number): string {
  return RUN_WORDS[status] ?? `status ${status}`;
}
