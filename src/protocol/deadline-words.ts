/**
 * How long a deadline is, and when one falls, in the words every client shows (`5 min`, `rejected by the deadline
 * in 4 min`): decisionTimeoutMs rejects a proposal nobody decided in time.
 */

/** `45 s`, `5 min`, `1.5 h`. */
export function spokenDuration(ms: number): string {
  if (ms < 120_000) return `${Math.max(1, Math.round(ms / 1000))} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 360_000) / 10} h`;
}

/** The deadline in force, for a banner or a check: `5 min (decisionTimeoutMs 300000)` or `none (…)`. */
export function deadlineInForce(decisionTimeoutMs: number): string {
  return decisionTimeoutMs > 0
    ? `a proposal nobody decides within ${spokenDuration(decisionTimeoutMs)} is rejected (decisionTimeoutMs ${decisionTimeoutMs})`
    : "none: a proposal waits until someone decides (decisionTimeoutMs 0; set it or SPOOL_DECISION_TIMEOUT_MS to reject the undecided)";
}

/** When a pending proposal's deadline falls, from its `expiresAt`: `rejected by the deadline in 4 min`; null: it has none. */
export function deadlineWords(expiresAt: number | null | undefined, now: number = Date.now()): string | null {
  if (expiresAt === null || expiresAt === undefined) return null;
  const left = expiresAt - now;
  return left <= 0 ? "rejected by the deadline any moment now" : `rejected by the deadline in ${spokenDuration(left)}`;
}
