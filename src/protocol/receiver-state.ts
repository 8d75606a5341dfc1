import { spokenDuration } from "./deadline-words.js";
import { escapeControl } from "./proposal-facts.js";

/**
 * What a receiver may be told of: a proposal waits, it was decided, its command finished, its deadline rejected it;
 * a run paused at its budget (it waits for a person as a proposal does).
 */
export const NOTIFY_EVENTS = ["proposal", "decided", "finished", "expired", "budget"] as const;

/** How a delivery's body is written: Spool's own JSON, a Slack incoming webhook's `{"text"}`, or an ntfy topic's plain text. */
export const NOTIFY_FORMATS = ["json", "slack", "ntfy"] as const;

/** What `notify/list` says of a receiver's state (src/protocol/methods/notify.ts NotifyTargetView). */
export interface ReceiverState {
  pending: number;
  lastError: string | null;
  deliveredAt: number | null;
  failingSince: number | null;
}

/**
 * A receiver's state in the words `spool notify list` and `spool doctor` show: `failing for 12 min (ECONNREFUSED);
 * 3 deliveries owed; never delivered`, `last delivered 2 min ago; nothing owed`, `nothing sent yet`.
 */
export function receiverStateWords(t: ReceiverState, now: number = Date.now()): { failing: boolean; words: string } {
  const owed = t.pending === 0 ? "nothing owed" : `${t.pending} deliver${t.pending === 1 ? "y" : "ies"} owed`;
  const delivered = t.deliveredAt === null ? "never delivered" : `last delivered ${spokenDuration(Math.max(0, now - t.deliveredAt))} ago`;
  if (t.failingSince !== null) {
    const why = t.lastError ? ` (${escapeControl(t.lastError)})` : "";
    return { failing: true, words: `failing for ${spokenDuration(Math.max(0, now - t.failingSince))}${why}; ${owed}; ${delivered}` };
  }
  if (t.deliveredAt === null && t.pending === 0) return { failing: false, words: "nothing sent yet" };
  return { failing: false, words: `${delivered}; ${owed}` };
}
