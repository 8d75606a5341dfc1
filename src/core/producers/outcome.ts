import type { TransportKind } from "../../protocol/roles.js";
import { channelFromRow } from "../../store/producer-row.js";
import { lineCount } from "../../store/repositories.js";
import type { EntryRow } from "../../store/schema.js";
import { ENTRY } from "../status.js";

/** How a producer ended. */
/** Network mode allowlist: the hosts a command reached and those refused, as its runner reported them. */
export type EgressReached = { allowed: string[]; blocked: string[] };

export type Outcome =
  | {
      kind: "completed";
      exit_code?: number | null | undefined;
      signal?: string | null | undefined;
      duration?: number | undefined;
      egress?: EgressReached | undefined;
    }
  | { kind: "aborted"; reason: string; duration?: number | undefined; egress?: EgressReached | undefined }
  /** `reason`: the canceller's words, when given (none: "cancelled by X" says it all, not "cancelled by X: cancelled"). */
  | { kind: "cancelled"; reason?: string | undefined; duration?: number | undefined; by?: string | undefined; via?: TransportKind | undefined };

/** The channels' terminal status for an outcome: exit codes and reasons live in attributes, never here. */
export function outcomeStatus(outcome: Outcome): number {
  if (outcome.kind !== "completed") return ENTRY.cancelled;
  return (outcome.exit_code ?? 0) !== 0 || outcome.signal ? ENTRY.failed : ENTRY.done;
}

function describeOutcome(outcome: Outcome): string {
  switch (outcome.kind) {
    case "completed":
      if (outcome.signal) return `killed by ${outcome.signal}`;
      return outcome.exit_code === undefined || outcome.exit_code === null ? "completed (exit code unknown)" : `exit ${outcome.exit_code}`;
    case "aborted":
      return `aborted: ${outcome.reason}`;
    case "cancelled":
      return `cancelled${outcome.by ? ` by ${outcome.by}` : ""}${outcome.reason ? `: ${outcome.reason}` : ""}`;
  }
}

/** The attributes every channel (and the log entry) keeps of an outcome. */
export function outcomeAttributes(outcome: Outcome): Record<string, unknown> {
  const details: Record<string, unknown> = { outcome: outcome.kind };
  if (outcome.kind === "completed") {
    details.exit_code = outcome.exit_code ?? null;
    details.signal = outcome.signal ?? null;
  } else if (outcome.reason) {
    details.reason = outcome.reason;
  }
  if (outcome.kind === "cancelled" && outcome.by) details.cancelledBy = outcome.by;
  if ("duration" in outcome && outcome.duration !== undefined) details.duration = outcome.duration;
  return details;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** The log entry's one-line summary: command, outcome, duration, size of each channel. */
export function summaryLine(command: string, outcome: Outcome, channels: EntryRow[]): string {
  const duration = "duration" in outcome && outcome.duration !== undefined ? ` in ${outcome.duration} ms` : "";
  const sizes = channels.map((c) => `${channelFromRow(c).name} ${plural(c.bytes, "byte")}/${plural(lineCount(c), "line")}`).join(", ");
  return `$ ${command} → ${describeOutcome(outcome)}${duration}; ${sizes}`;
}
