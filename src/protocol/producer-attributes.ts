import type { Outcome } from "./views-schemas.js";

/*
 * Reading a producer's log-entry attributes (JSON that Spool and plugins write) into typed fields, once for both
 * readers: the server's row mapping (src/store/producer-row.ts) and the wire's view of a bag (views.ts,
 * producerView). They differ in one thing only, said by the string reader each passes: the wire shows "" as
 * none; the server's code reads a string as written (a reason given as "" stays given).
 */

export const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
export const int = (value: unknown): number | null => (Number.isInteger(value) ? (value as number) : null);
export const num = (value: unknown): number | null => (typeof value === "number" && Number.isFinite(value) ? value : null);
/** A string attribute, "" none: how the wire shows it. */
export const nonEmptyString = (value: unknown): string | null => (typeof value === "string" && value !== "" ? value : null);
/** A string attribute as written, "" too: how the server's code reads it. */
export const anyString = (value: unknown): string | null => (typeof value === "string" ? value : null);

/** Every outcome (a Record, so that a new one in the schema is a compile error here until it is listed). */
const OUTCOMES: Record<Outcome, true> = { completed: true, aborted: true, cancelled: true };

/** The `outcome` attribute: how the producer ended; null before it did (or for anything that is no outcome). */
export const outcomeOf = (value: unknown): Outcome | null => (typeof value === "string" && Object.hasOwn(OUTCOMES, value) ? (value as Outcome) : null);

/** Who proposed a producer, how it was decided and how it ended: the fields both readers name alike. */
export interface DecisionAndEnd {
  /** workspace-write: whether the network is on; null when not recorded. */
  sandboxNetwork: boolean | null;
  sandboxReason: string | null;
  proposedBy: string | null;
  toolCallId: string | null;
  decision: "accept" | "reject" | null;
  resolvedBy: string | null;
  /** Why it was rejected, accepted, aborted or cancelled (the latest said). */
  reason: string | null;
  outcome: Outcome | null;
  /** Its channels' terminal status as the summary recorded it once it ended; null before. */
  endStatus: number | null;
  exitCode: number | null;
  signal: string | null;
  durationMs: number | null;
  /** When it was accepted (and its channels opened), by the server's clock; null before. */
  acceptedAt: number | null;
  cancelledBy: string | null;
}

/** DecisionAndEnd from a log entry's attributes; `str` reads the strings (nonEmptyString or anyString). */
export function decisionAndEnd(a: Record<string, unknown>, str: (value: unknown) => string | null): DecisionAndEnd {
  const outcome = outcomeOf(a.outcome);
  return {
    sandboxNetwork: typeof a.sandboxNetwork === "boolean" ? a.sandboxNetwork : null,
    sandboxReason: str(a.sandboxReason),
    proposedBy: str(a.proposedBy),
    toolCallId: str(a.toolCallId),
    decision: a.decision === "accept" || a.decision === "reject" ? a.decision : null,
    resolvedBy: str(a.resolvedBy),
    reason: str(a.reason),
    outcome,
    endStatus: outcome === null ? null : int(a.status),
    exitCode: int(a.exit_code),
    signal: str(a.signal),
    durationMs: num(a.duration),
    acceptedAt: int(a.acceptedAt),
    cancelledBy: str(a.cancelledBy),
  };
}
