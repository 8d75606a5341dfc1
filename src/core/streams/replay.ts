import { DRAINED_BYTES } from "../../rpc/connection-context.js";
import type { ReadGrant } from "../../rpc/read-cap.js";
import { channelFromRow, type ProducerChannel } from "../../store/producer-row.js";
import type { Repositories } from "../../store/repositories.js";
import type { ChunkRow } from "../../store/schema.js";
import { channelOpen } from "../status.js";
import type { Subscription, WatcherHub } from "./watchers.js";

/** Chunks read at most at once, and the bytes a page aims at: chunks of 1 KiB come 32 at a time, chunks of 1 MiB one at a time. */
const MAX_PAGE = 32;
const PAGE_BYTES = 1024 * 1024;

function exitCode(channel: ProducerChannel): { exit_code?: number | null } {
  return channel.outcome === "completed" ? { exit_code: channel.exitCode } : {};
}

/** The first chunks of `page` that fit `bytes` (the first always: a stored chunk is never larger than a page's grant asks for). */
function fitting(page: ChunkRow[], bytes: number): { chunks: ChunkRow[]; bytes: number } {
  let size = 0;
  let n = 0;
  for (const chunk of page) {
    if (n > 0 && size + chunk.data.length > bytes) break;
    size += chunk.data.length;
    n++;
  }
  return { chunks: n === page.length ? page : page.slice(0, n), bytes: size };
}

/**
 * Replays stored chunks after each channel's `after`, then hands over to live
 * delivery. Each page (about PAGE_BYTES) waits until the watcher has read
 * what came before (down to DRAINED_BYTES), then for room under the
 * server's cap on reads in flight (`hub.reads`, limits.maxReadBytesInFlight),
 * then is read and sent as work scheduled on the watcher's connection, in
 * its fair share of the event loop. The page's bytes count against the cap
 * until they are written to the socket. So a watcher that does not read
 * costs nothing while it sits and holds at most a page, and all watchers
 * together hold at most the cap. (How far a live watcher may fall behind is
 * the hub's lag limit; the last parameter is no longer used.)
 */
export async function replay(repos: Repositories, hub: WatcherHub, sub: Subscription, _maxBufferBytes?: number): Promise<void> {
  const connection = sub.connection;
  const inTurn = <T>(work: () => Promise<T>): Promise<T | undefined> => (connection.schedule ? connection.schedule("stream/subscribe replay", work) : work());
  const pageBytes = Math.max(PAGE_BYTES, hub.maxChunkBytes);
  /** Where the connection's output stood after the last page was sent: the next page waits until it has left the process. */
  let lastPage = 0;
  /** Waits for the last page to be written and the peer to have read, then for room under the cap; undefined when the connection or the subscription went meanwhile. */
  const room = async (): Promise<ReadGrant | null | undefined> => {
    if (lastPage && connection.whenFlushed && !(await connection.whenFlushed(lastPage))) return undefined;
    if (connection.whenDrained && connection.bufferedAmount() > DRAINED_BYTES && !(await connection.whenDrained(DRAINED_BYTES))) return undefined;
    if (sub.closed || connection.closed) return undefined;
    if (!hub.reads) return null;
    try {
      return await hub.reads.acquire(connection, pageBytes);
    } catch {
      // Too many reads wait already: the watcher is told it fell behind, and may subscribe again.
      if (!connection.closed) hub.lagged(sub);
      return undefined;
    }
  };
  // The first page is one chunk: its size tells how many the next may hold.
  let pageSize = 1;
  for (const [entryId] of sub.channels) {
    /** Read past the stored end as it was when the page's read began: time to go live. */
    let atEnd = false;
    for (;;) {
      const grant = await room();
      if (grant === undefined) return;
      let sent = 0;
      const step = await inTurn(async (): Promise<"more" | "end" | "live" | "stop"> => {
        const watch = sub.channels.get(entryId);
        if (!watch || sub.closed) return "stop";
        let asked = pageSize;
        let row: Awaited<ReturnType<typeof repos.entries.findEntryById>> | undefined;
        if (atEnd) {
          // Chunks published from here on sit in the watch's pending list; finishReplay flushes them by seq, so none is lost or repeated.
          row = await repos.entries.findEntryById(entryId);
          if (!row) return "live";
          if (row.last_seq <= watch.lastSent) {
            const ended = channelOpen(row.status) ? null : { status: row.status, ...exitCode(channelFromRow(row)) };
            hub.finishReplay(sub, entryId, ended);
            return "live";
          }
          // Chunks committed while we read: fetch them (a page at a time) before going live.
          asked = Math.min(MAX_PAGE, row.last_seq - watch.lastSent);
        }
        const page = await repos.chunks.readChunksAfter(entryId, watch.lastSent, asked);
        const kept = grant ? fitting(page, grant.bytes) : { chunks: page, bytes: page.reduce((n, c) => n + c.data.length, 0) };
        grant?.shrink(kept.bytes);
        if (page.length && !atEnd) pageSize = Math.max(1, Math.min(MAX_PAGE, Math.floor((PAGE_BYTES * kept.chunks.length) / Math.max(1, kept.bytes))));
        for (const chunk of kept.chunks) hub.sendChunk(sub, entryId, chunk.seq, chunk.data);
        sent = kept.chunks.length;
        if (sent) lastPage = connection.sentBytes ?? 0;
        if (atEnd) return "end";
        return page.length === asked || kept.chunks.length < page.length ? "more" : "end";
      });
      // The page's bytes come back once they have left the process (at once when nothing was sent).
      if (grant) sent ? grant.releaseWhenFlushed() : grant.release();
      if (step === undefined || step === "stop" || sub.closed || connection.closed) return;
      if (step === "live") break;
      atEnd = step === "end";
    }
  }
}
