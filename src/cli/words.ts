import { ENTRY, entryStatusWord } from "../core/status.js";
import { escapeControl } from "../protocol/proposal-facts.js";

/**
 * How a command ended, in the words people read (numbers stay in --json): `done, exit 0`, `failed, exit 2`,
 * `failed, killed by SIGKILL`, `cancelled by spool-act: cancelled with Ctrl-C`, `aborted: runner lost`, `running`,
 * `waiting for a decision`, `rejected by spool-cli: not now`. `attributes` are the log entry's or a channel's.
 */
export function outcomeWords(status: number, attributes: Record<string, unknown>): string {
  const reason = attributes.reason ? `: ${escapeControl(String(attributes.reason))}` : "";
  const by = attributes.resolvedBy ? ` by ${escapeControl(String(attributes.resolvedBy))}` : "";
  const exit =
    attributes.signal != null && attributes.signal !== ""
      ? `, killed by ${escapeControl(String(attributes.signal))}`
      : attributes.exit_code != null
        ? `, exit ${String(attributes.exit_code)}`
        : "";
  switch (status) {
    case ENTRY.done:
      return `done${exit}`;
    case ENTRY.failed:
      return `failed${exit}`;
    case ENTRY.cancelled: {
      if (attributes.outcome === "aborted") return `aborted${reason}`;
      const who = attributes.cancelledBy ? ` by ${escapeControl(String(attributes.cancelledBy))}` : "";
      return `cancelled${who}${reason}`;
    }
    case ENTRY.streaming:
      return "running";
    case ENTRY.proposed:
      return "waiting for a decision";
    case ENTRY.rejected:
      return `rejected${by}${reason}`;
    default:
      return entryStatusWord(status);
  }
}
