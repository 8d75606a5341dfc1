import { lineCount } from "../../protocol/entry-lines.js";
import { storeError } from "../errors.js";
import { type AppendOutcome, countNewlines, type QueuedAppend } from "../store.js";
import { busyDelay, isBusy } from "./busy.js";
import type { SqliteStore } from "./sqlite-store.js";

/** Appends waiting for the next group commit, per store. */
interface AppendQueue {
  store: SqliteStore;
  run(items: QueuedAppend[]): AppendOutcome[];
  pending: QueuedAppend[];
  scheduled: boolean;
  /** When the group being retried was first refused as busy (0: none is). */
  busySince: number;
  busyAttempts: number;
}

const queues = new WeakMap<SqliteStore, AppendQueue>();

/**
 * A channel's counters as the group being committed leaves them: read once per group (five columns, as an array:
 * no row object per group, no copy per chunk), changed in place by each chunk, written back once.
 */
interface GroupEntry {
  bytes: number;
  newlines: number;
  ends_with_newline: number;
  lastSeq: number;
  status: number;
  /** Chunks of this group appended to it: its row needs the UPDATE. */
  changed: boolean;
}

/**
 * Builds the group-commit transaction once per store, over prepared statements.
 *
 * Each channel's row is read once per group (its counters, last_seq and status) and written back once, after the
 * group's last chunk for it, instead of a SELECT and an UPDATE per chunk. That is safe because the group is one
 * synchronous transaction on the server's only connection: no other write (a close, a cancel) can come between
 * two of its chunks, so what the first read saw holds for the whole group, and a chunk sees the counters the
 * chunks before it in the group left, as it did when each wrote them to the row.
 */
function queueFor(store: SqliteStore): AppendQueue {
  const cached = queues.get(store);
  if (cached) return cached;
  const select = store.sqlite
    .prepare<[number], [number, number, number, number, number]>("SELECT bytes, newlines, ends_with_newline, last_seq, status FROM entries WHERE id = ?")
    .raw(true);
  const insert = store.sqlite.prepare<[number, number, number, number, number, Buffer]>(
    "INSERT INTO chunks (entry_id, seq, byte_offset, line_offset, newlines, data) VALUES (?, ?, ?, ?, ?, ?)",
  );
  const update = store.sqlite.prepare<[number, number, number, number, number, number]>(
    "UPDATE entries SET bytes = ?, newlines = ?, ends_with_newline = ?, last_seq = ?, updated_at = ? WHERE id = ?",
  );
  const stored = store.sqlite.prepare<[number, number], { data: Buffer }>("SELECT data FROM chunks WHERE entry_id = ? AND seq = ?");
  const appendOne = (rows: Map<number, GroupEntry>, { entryId, data, seq, open }: QueuedAppend): AppendOutcome => {
    let entry = rows.get(entryId);
    if (!entry) {
      const read = select.get(entryId);
      if (!read) throw new Error(`entry ${entryId} vanished`);
      entry = { bytes: read[0], newlines: read[1], ends_with_newline: read[2], lastSeq: read[3], status: read[4], changed: false };
      rows.set(entryId, entry);
    }
    if (seq !== undefined && seq <= entry.lastSeq) {
      // A retry is acknowledged only with the bytes already stored under its seq (one chunk read, O(chunk)); a seq
      // stored earlier in this same group is read back from it.
      const previous = stored.get(entryId, seq);
      if (!previous?.data.equals(data)) return { kind: "mismatch", seq };
      return { kind: "duplicate", seq, bytes: entry.bytes, lines: lineCount(entry) };
    }
    if (entry.status !== open) return { kind: "closed", status: entry.status };
    const next = entry.lastSeq + 1;
    if (seq !== undefined && seq !== next) return { kind: "gap", expected: next };
    const newlines = countNewlines(data);
    insert.run(entryId, next, entry.bytes, entry.newlines, newlines, data);
    entry.bytes += data.length;
    entry.newlines += newlines;
    if (data.length > 0) entry.ends_with_newline = Number(data[data.length - 1] === 10);
    entry.lastSeq = next;
    entry.changed = true;
    return { kind: "appended", seq: next, bytes: entry.bytes, lines: lineCount(entry) };
  };
  const txn = store.sqlite.transaction((items: QueuedAppend[]) => {
    const rows = new Map<number, GroupEntry>();
    const now = Date.now();
    const outcomes = items.map((item) => appendOne(rows, item));
    for (const [entryId, entry] of rows) {
      if (entry.changed) update.run(entry.bytes, entry.newlines, entry.ends_with_newline, entry.lastSeq, now, entryId);
    }
    return outcomes;
  });
  const queue: AppendQueue = { store, run: (items) => txn.immediate(items), pending: [], scheduled: false, busySince: 0, busyAttempts: 0 };
  queues.set(store, queue);
  return queue;
}

function flush(queue: AppendQueue): void {
  queue.scheduled = false;
  if (queue.pending.length === 0) return;
  const { sqlite } = queue.store;
  // The checkpoint worker restarts the WAL and holds the writer's lock meanwhile: go on once it is done.
  const held = queue.store.appendsHeld?.();
  if (held) {
    queue.scheduled = true;
    void held.then(() => flush(queue));
    return;
  }
  if (sqlite.inTransaction) {
    // A transaction of the Kysely side is open across an await: joining it would tie acknowledged chunks to its
    // fate (better-sqlite3 would nest ours as a savepoint). Go after it.
    queue.scheduled = true;
    setImmediate(() => flush(queue));
    return;
  }
  const items = queue.pending;
  queue.pending = [];
  let outcomes: AppendOutcome[];
  try {
    outcomes = queue.run(items);
  } catch (error) {
    // Busy or locked past the busy timeout (the checkpoint worker, another process on the file): nothing of the
    // group was written, so it is tried again, whole and in order ahead of what came meanwhile, for a bounded time.
    if (isBusy(error) && !sqlite.inTransaction) {
      const now = Date.now();
      if (queue.busySince === 0) queue.busySince = now;
      queue.busyAttempts++;
      queue.store.busyRetry.onBusy?.(queue.busyAttempts, error, items.length);
      if (now - queue.busySince < queue.store.busyRetry.giveUpMs) {
        queue.pending = items.concat(queue.pending);
        queue.scheduled = true;
        setTimeout(() => flush(queue), busyDelay(queue.busyAttempts));
        return;
      }
    }
    queue.busySince = 0;
    queue.busyAttempts = 0;
    // The whole group rolled back: every writer in it gets the error (a full disk as StorageFull) and may retry its seq.
    const typed = storeError(error);
    for (const item of items) item.reject(typed);
    return;
  }
  queue.busySince = 0;
  queue.busyAttempts = 0;
  for (const [i, item] of items.entries()) item.resolve(outcomes[i]!);
}

/**
 * Appends one chunk to a streamed entry: one INSERT, whatever the entry
 * already holds; its counters are updated once per group commit. `seq` numbers the entry's
 * chunks from 1; a repeated one with the same bytes is acknowledged without
 * writing, with other bytes it is a mismatch. `open` is the status of a
 * channel that still takes appends.
 *
 * Group commit: appends that arrive in the same turn of the event loop (from
 * many producers at once) share one transaction, so a thousand small appends
 * a second cost a few dozen WAL commits, not a thousand. The promise resolves
 * after the commit, so an acknowledged chunk is stored.
 */
export function appendChunk(store: SqliteStore, entryId: number, data: Buffer, seq: number | undefined, open: number): Promise<AppendOutcome> {
  const queue = queueFor(store);
  return new Promise((resolve, reject) => {
    queue.pending.push({ entryId, data, seq, open, resolve, reject });
    if (!queue.scheduled) {
      queue.scheduled = true;
      setImmediate(() => flush(queue));
    }
  });
}
