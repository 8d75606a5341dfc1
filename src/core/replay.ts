import { parseAttributes, type Repositories } from "../store/repositories.js";
import { ENTRY } from "./status.js";
import type { Subscription, WatcherHub } from "./watchers.js";

const REPLAY_PAGE = 32;

async function drained(sub: Subscription, limit: number): Promise<boolean> {
  while (sub.connection.bufferedAmount() > limit / 2) {
    if (sub.closed || sub.connection.closed) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return !sub.closed && !sub.connection.closed;
}

function exitCode(attributes: Record<string, unknown>): { exit_code?: number | null } {
  return attributes.outcome === "completed" ? { exit_code: (attributes.exit_code as number | null) ?? null } : {};
}

/** Replays stored chunks after each channel's `after`, then hands over to live delivery. */
export async function replay(repos: Repositories, hub: WatcherHub, sub: Subscription, maxBufferBytes: number): Promise<void> {
  for (const [entryId] of sub.channels) {
    for (;;) {
      const watch = sub.channels.get(entryId)!;
      if (!(await drained(sub, maxBufferBytes))) return;
      const page = await repos.chunks.readChunksAfter(entryId, watch.lastSent, REPLAY_PAGE);
      for (const chunk of page) hub.sendChunk(sub, entryId, chunk.seq, chunk.data);
      if (page.length < REPLAY_PAGE) break;
    }
    // Chunks published from here on sit in the watch's pending list; finishReplay flushes them by seq, so none is lost or repeated.
    const row = await repos.entries.findEntryById(entryId);
    if (!row) continue;
    const watch = sub.channels.get(entryId)!;
    if (row.last_seq > watch.lastSent && !sub.closed) {
      // Chunks committed while we read the status: fetch them before going live.
      for (const chunk of await repos.chunks.readChunksAfter(entryId, watch.lastSent, row.last_seq - watch.lastSent)) {
        hub.sendChunk(sub, entryId, chunk.seq, chunk.data);
      }
    }
    const ended = row.status === ENTRY.streaming ? null : { status: row.status, ...exitCode(parseAttributes(row)) };
    hub.finishReplay(sub, entryId, ended);
  }
}
