import { channelFromRow, type ProducerChannel } from "../store/producer-row.js";
import type { Repositories } from "../store/repositories.js";
import { ENTRY } from "./status.js";
import type { Subscription, WatcherHub } from "./watchers.js";

/** Chunks read at most at once, and the bytes a page aims at: chunks of 1 KiB come 32 at a time, chunks of 1 MiB one at a time. */
const MAX_PAGE = 32;
const PAGE_BYTES = 1024 * 1024;

function exitCode(channel: ProducerChannel): { exit_code?: number | null } {
  return channel.outcome === "completed" ? { exit_code: channel.exitCode } : {};
}

/**
 * Replays stored chunks after each channel's `after`, then hands over to live
 * delivery. Each page (about PAGE_BYTES) is read and sent as work scheduled
 * on the watcher's connection: it waits until the watcher has read what came
 * before (down to DRAINED_BYTES) and takes its fair share of the event loop,
 * so a watcher that does not read costs nothing while it sits and holds at
 * most a page. (How far a live watcher may fall behind is the hub's lag
 * limit; the last parameter is no longer used.)
 */
export async function replay(repos: Repositories, hub: WatcherHub, sub: Subscription, _maxBufferBytes?: number): Promise<void> {
  const connection = sub.connection;
  const inTurn = <T>(work: () => Promise<T>): Promise<T | undefined> => (connection.schedule ? connection.schedule("stream/subscribe replay", work) : work());
  // The first page is one chunk: its size tells how many the next may hold.
  let pageSize = 1;
  for (const [entryId] of sub.channels) {
    for (;;) {
      const more = await inTurn(async () => {
        const watch = sub.channels.get(entryId);
        if (!watch || sub.closed) return false;
        const asked = pageSize;
        const page = await repos.chunks.readChunksAfter(entryId, watch.lastSent, asked);
        const bytes = page.reduce((n, chunk) => n + chunk.data.length, 0);
        if (page.length) pageSize = Math.max(1, Math.min(MAX_PAGE, Math.floor((PAGE_BYTES * page.length) / Math.max(1, bytes))));
        for (const chunk of page) hub.sendChunk(sub, entryId, chunk.seq, chunk.data);
        return page.length === asked;
      });
      if (more === undefined || sub.closed || connection.closed) return;
      if (!more) break;
    }
    const live = await inTurn(async () => {
      // Chunks published from here on sit in the watch's pending list; finishReplay flushes them by seq, so none is lost or repeated.
      const row = await repos.entries.findEntryById(entryId);
      if (!row) return true;
      const watch = sub.channels.get(entryId);
      if (!watch || sub.closed) return false;
      if (row.last_seq > watch.lastSent) {
        // Chunks committed while we read the status: fetch them before going live.
        for (const chunk of await repos.chunks.readChunksAfter(entryId, watch.lastSent, row.last_seq - watch.lastSent)) {
          hub.sendChunk(sub, entryId, chunk.seq, chunk.data);
        }
      }
      const ended = row.status === ENTRY.streaming ? null : { status: row.status, ...exitCode(channelFromRow(row)) };
      hub.finishReplay(sub, entryId, ended);
      return true;
    });
    if (!live || sub.closed || connection.closed) return;
  }
}
