import type { SpoolNotifications } from "../protocol/notifications.js";
import { escapeControl } from "../protocol/proposal-facts.js";
import { queueWords } from "../protocol/shown-state.js";
import { ENTRY, entryStatusWord } from "../protocol/status.js";
import { type Producer, producerOf, type TypedEntry } from "../protocol/views.js";

/**
 * How a command stands or ended, in the words people read (numbers stay in --json): `done, exit 0`,
 * `failed, exit 2`, `failed, killed by SIGKILL`, `cancelled by spool-act: cancelled with Ctrl-C`,
 * `aborted: runner lost`, `queued: 2nd in line for pool linux, waiting 40s (waiting for a free runner)`, `running`, `waiting for a decision`, `rejected by spool-cli: not now`. From the
 * typed producer view (src/protocol/views.ts): a state this switch does not name is a compile error.
 */
export function outcomeWords(p: Producer): string {
  const reason = p.reason !== null ? `: ${escapeControl(p.reason)}` : "";
  const exit = p.signal !== null ? `, killed by ${escapeControl(p.signal)}` : p.exitCode !== null ? `, exit ${p.exitCode}` : "";
  switch (p.state) {
    case "proposed":
      return "waiting for a decision";
    case "rejected":
      return `rejected${p.resolvedBy !== null ? ` by ${escapeControl(p.resolvedBy)}` : ""}${reason}`;
    case "accepted":
      return "accepted";
    case "queued":
      // Where it waits (entry/list and entry/get say): its place in line and since when.
      if (p.queue) return `queued: ${escapeControl(queueWords(p.queue))} (waiting for a free runner)`;
      return `queued${p.pool ? ` for pool ${escapeControl(p.pool.name)}` : p.runner ? ` for ${escapeControl(p.runner)}` : ""} (waiting for a free runner)`;
    case "running":
      return "running";
    case "done":
      return `done${exit}`;
    case "failed":
      return `failed${exit}`;
    case "cancelled":
      return `cancelled${p.cancelledBy !== null ? ` by ${escapeControl(p.cancelledBy)}` : ""}${reason}`;
    case "aborted":
      return `aborted${reason}`;
  }
}

/** The states a producer ends in. */
export const ENDED: readonly Producer["state"][] = ["done", "failed", "cancelled", "aborted"];

/** How a producer ended, as its `stream/finished` says it (the words outcomeWords gives for the state it ended in). */
export function finishedWords(p: SpoolNotifications["stream/finished"]): string {
  const reason = p.reason ? `: ${escapeControl(p.reason)}` : "";
  if (p.outcome !== "completed") return `${p.outcome}${reason}`;
  const exit = p.signal ? `, killed by ${escapeControl(p.signal)}` : p.exit_code !== undefined && p.exit_code !== null ? `, exit ${p.exit_code}` : "";
  return `${p.status === ENTRY.done ? "done" : "failed"}${exit}`;
}

/**
 * How a command ended once its channels did (`status`: the first that is not 200, else 200): from its log
 * entry when it could be read, else the status word alone (with the exit code when the stream's end told it).
 */
export function endedWords(log: Pick<TypedEntry, "path" | "producer"> | undefined, status: number, exitCode?: number | null): string {
  if (log) return outcomeWords(producerOf(log));
  return `${entryStatusWord(status)}${exitCode !== undefined && exitCode !== null ? `, exit ${exitCode}` : ""}`;
}
