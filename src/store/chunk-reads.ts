import type SQLite from "better-sqlite3";
import type { Kysely } from "kysely";
import { type ChunkPart, EMPTY, LineCutter, type LineRead, type LineReadOptions, OffsetPastLine } from "./line-cutter.js";
import { type LinePlace, lastChunkBefore, type Start, startOf } from "./line-search.js";
import type { ChunkRow, Database } from "./schema.js";
import { openSqlite } from "./sqlite/sqlite-driver.js";
import { prepareEarly, sqliteOf, statementsFor, syncRead, VIA_KYSELY } from "./sqlite/sync-reads.js";
import type { Store } from "./store.js";

export { cutLines, type LineRead, type LineReadOptions, OffsetPastLine } from "./line-cutter.js";

/**
 * Reads of streamed entries' chunks: synchronous on SQLite where they may be
 * (sqlite/sync-reads.ts), through Kysely on PostgreSQL. A read of a few lines fetches
 * the chunk holding its first line, then the following ones only while it
 * needs them, never a page of chunks to cut a few lines out of the first.
 */

/**
 * Chunk rows taken by the line reads (readLines), for tests: a read of 20 lines fetches O(1) of them; and, through
 * Kysely, the pages of chunks after the first fetched and their rows.
 */
export const chunkReadStats = { rows: 0, bytes: 0, pages: 0, fetched: 0 };

/** Chunks with seq in (after, after + limit], in order. */
export function readChunksAfter(db: Kysely<Database>, entryId: number, after: number, limit: number): Promise<ChunkRow[]> {
  return db.selectFrom("chunks").selectAll().where("entry_id", "=", entryId).where("seq", ">", after).orderBy("seq").limit(limit).execute();
}

/** Up to `limit` chunks after `after` through Kysely; given `bound`, only those starting before line `lineEnd` and at or before byte `byteEnd` (each when given). */
function partsAfter(
  db: Kysely<Database>,
  entryId: number,
  after: number,
  limit: number,
  bound?: { lineEnd: number | undefined; byteEnd: number | undefined },
): Promise<ChunkPart[]> {
  let query = db.selectFrom("chunks").select(["seq", "newlines", "data"]).where("entry_id", "=", entryId).where("seq", ">", after);
  if (bound?.lineEnd !== undefined) query = query.where("line_offset", "<", bound.lineEnd);
  if (bound?.byteEnd !== undefined) query = query.where("byte_offset", "<=", bound.byteEnd);
  chunkReadStats.pages++;
  return query
    .orderBy("seq")
    .limit(limit)
    .execute()
    .then((rows) => {
      chunkReadStats.fetched += rows.length;
      return rows;
    });
}

/** The chunk reads' statements of one SQLite connection. */
const chunkStatements = (sqlite: SQLite.Database) => ({
  first: sqlite.prepare<[number], ChunkPart>("SELECT seq, newlines, data FROM chunks WHERE entry_id = ? AND seq > 0 ORDER BY seq LIMIT 1"),
  // The search for a line's chunk (lastChunkBefore): the channel's last seq, then the first chunk at or after
  // each seq it tries, then the chunk it found; each one lookup on the (entry_id, seq) key.
  last: sqlite.prepare<[number], LinePlace>("SELECT seq, line_offset, newlines FROM chunks WHERE entry_id = ? ORDER BY seq DESC LIMIT 1"),
  probe: sqlite.prepare<[number, number], LinePlace>("SELECT seq, line_offset, newlines FROM chunks WHERE entry_id = ? AND seq >= ? ORDER BY seq LIMIT 1"),
  atSeq: sqlite.prepare<[number, number], ChunkPart & { line_offset: number }>(
    "SELECT seq, line_offset, newlines, data FROM chunks WHERE entry_id = ? AND seq = ?",
  ),
  // The chunks after one, walked with one statement (iterate): a read of n chunks seeks the index once, not n times.
  rest: sqlite.prepare<[number, number], ChunkPart>("SELECT seq, newlines, data FROM chunks WHERE entry_id = ? AND seq > ? ORDER BY seq"),
  after: sqlite.prepare<[number, number, number], ChunkRow>("SELECT * FROM chunks WHERE entry_id = ? AND seq > ? ORDER BY seq LIMIT ?"),
});

type Statements = ReturnType<typeof chunkStatements>;

/** A synchronous read over the chunk statements (see sqlite/sync-reads.ts), or VIA_KYSELY. */
function sync<T>(sqlite: SQLite.Database | undefined, read: (statements: Statements) => T): T | typeof VIA_KYSELY {
  return syncRead(sqlite, () => read(statementsFor(sqlite!, chunkStatements)));
}

/** Chunks a bounded Kysely page fetches at most (the bounds keep it to what the read takes, and one chunk more). */
const BOUNDED_PAGE = 64;

/** Bytes a read fetches synchronously before it lets the event loop run (Kysely's pages are as large). */
const SYNC_SLICE_BYTES = 1024 * 1024;

/**
 * Reads `count` lines starting at 0-based `line` from a streamed entry,
 * fetching the chunk that holds its first line (an index lookup) and then the
 * following ones only while they are needed: one at a time on SQLite; through
 * Kysely (PostgreSQL) in pages of 64 of the chunks that start within the lines
 * asked for and within maxBytes of the first one (a tail of 20 short lines: one
 * round trip, not five), or, where the first chunk's byte offset is not known,
 * in pages of 1, 2, 4… up to 16.
 */
async function linesOf(
  db: Kysely<Database>,
  sqlite: SQLite.Database | undefined,
  entryId: number,
  line: number,
  count: number,
  maxBytes: number,
  options: LineReadOptions = {},
): Promise<LineRead> {
  if (count <= 0) return { ...EMPTY };
  let start = sync(sqlite, (s): Start | undefined => {
    if (line === 0) {
      const row = s.first.get(entryId);
      return row && { chunk: row, skip: 0 };
    }
    const last = s.last.get(entryId);
    if (!last) return undefined;
    const search = lastChunkBefore(line, last);
    let step = search.next();
    while (!step.done) step = search.next(s.probe.get(entryId, step.value));
    const row = step.value === 0 ? undefined : s.atSeq.get(entryId, step.value);
    return row && { chunk: row, skip: line - row.line_offset };
  });
  if (start === VIA_KYSELY) start = await startOf(db, entryId, line, sqlite !== undefined);
  if (!start) {
    if (options.offset) throw new OffsetPastLine(0);
    return options.offset === undefined ? { ...EMPTY } : { ...EMPTY, part: { offset: 0, bytes: 0, end: true } };
  }
  const cutter = new LineCutter(start.skip, count, maxBytes, options);
  /** The last chunk taken. */
  let last = start.chunk.seq;
  const take = (chunk: ChunkPart): boolean => {
    last = chunk.seq;
    chunkReadStats.rows++;
    chunkReadStats.bytes += chunk.data.length;
    return cutter.take(chunk);
  };
  if (take(start.chunk)) return cutter.result();
  // Every chunk after the first that the read can need starts before line `line + count` and at most maxBytes past
  // the first chunk's end (the next one is needed to tell the read was truncated).
  const lineEnd = line + count;
  const byteEnd = start.chunk.byte_offset === undefined ? Number.NaN : start.chunk.byte_offset + start.chunk.data.length + maxBytes;
  // Either bound alone keeps the pages to what the read takes and one chunk more (a read to the end has no line bound).
  const bound =
    Number.isSafeInteger(lineEnd) || Number.isSafeInteger(byteEnd)
      ? { lineEnd: Number.isSafeInteger(lineEnd) ? lineEnd : undefined, byteEnd: Number.isSafeInteger(byteEnd) ? byteEnd : undefined }
      : undefined;
  let page = bound ? BOUNDED_PAGE : 1;
  for (;;) {
    // On SQLite, the following chunks come from one statement walked until the read is complete, the entry's end,
    // or SYNC_SLICE_BYTES (then the event loop runs and the walk starts again after the last chunk taken).
    const walked = sync(sqlite, (s): "done" | "end" | "more" => {
      let bytes = 0;
      for (const chunk of s.rest.iterate(entryId, last)) {
        // Leaving the loop (return) resets the statement, so the connection is free for the next one.
        if (take(chunk)) return "done";
        bytes += chunk.data.length;
        if (bytes >= SYNC_SLICE_BYTES) return "more";
      }
      return "end";
    });
    if (walked === "done" || walked === "end") return cutter.result();
    if (walked === "more") {
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    const queue = await partsAfter(db, entryId, last, page, bound);
    if (!bound) page = Math.min(16, page * 2);
    if (queue.length === 0) return cutter.result();
    for (const chunk of queue) if (take(chunk)) return cutter.result();
    // A bounded page that came back short held every chunk the read can take (the entry ends before its bounds).
    if (bound && queue.length < page) return cutter.result();
  }
}

/**
 * Reads `count` lines starting at 0-based `line` from a streamed entry through
 * Kysely, fetching only the chunks that hold them.
 */
export function readLines(db: Kysely<Database>, entryId: number, line: number, count: number, maxBytes: number, options?: LineReadOptions): Promise<LineRead> {
  return linesOf(db, undefined, entryId, line, count, maxBytes, options);
}

/**
 * Line reads over a private in-memory SQLite database holding one channel, entry 1, of `chunks`: the same code as a
 * store's reads (linesOf, the search for a line's chunk, the cutter, the walk of the chunks after it) over the same
 * statements on a table of the same shape. The server's warm-up reads through it at start (features/entries/get.ts):
 * the first tail or slice on the store then compiles none of that code and finds its call sites' feedback there
 * (bench/history/README.md, "Issue 24, what the first reads after a burst spend their CPU on"). Nothing of the store is read.
 */
export function memoryLineReads(chunks: readonly { newlines: number; data: Buffer }[]) {
  const sqlite = openSqlite(":memory:");
  sqlite.exec(
    "CREATE TABLE chunks (id INTEGER PRIMARY KEY, entry_id INTEGER NOT NULL, seq INTEGER NOT NULL, byte_offset INTEGER NOT NULL, " +
      "line_offset INTEGER NOT NULL, newlines INTEGER NOT NULL, data BLOB NOT NULL, UNIQUE (entry_id, seq))",
  );
  const insert = sqlite.prepare("INSERT INTO chunks (entry_id, seq, byte_offset, line_offset, newlines, data) VALUES (1, ?, ?, ?, ?, ?)");
  let bytes = 0;
  let lines = 0;
  for (const [i, { newlines, data }] of chunks.entries()) {
    insert.run(i + 1, bytes, lines, newlines, data);
    bytes += data.length;
    lines += newlines;
  }
  return {
    // No transaction is ever open on it and nothing else uses it: the reads never go through Kysely.
    readLines: (entryId: number, line: number, count: number, maxBytes: number, options?: LineReadOptions): Promise<LineRead> =>
      linesOf(undefined as unknown as Kysely<Database>, sqlite, entryId, line, count, maxBytes, options),
    close: (): void => {
      sqlite.close();
    },
  };
}

/** Chunks a read in stored order fetches per query. */
const ORDER_PAGE = 256;

/**
 * The chunks of several channels of one producer in the order they were stored (their row ids: a producer's
 * chunks are appended one after another), from the first, until `maxBytes` (the chunk that passes it is left
 * out; `truncated` says so). How a command's typed input (channel 0) and its output interleaved.
 */
export async function readInOrder(
  db: Kysely<Database>,
  entryIds: readonly number[],
  maxBytes: number,
): Promise<{ chunks: { entryId: number; data: Buffer }[]; truncated: boolean }> {
  const chunks: { entryId: number; data: Buffer }[] = [];
  if (entryIds.length === 0) return { chunks, truncated: false };
  let after = 0;
  let bytes = 0;
  for (;;) {
    const rows = await db
      .selectFrom("chunks")
      .select(["id", "entry_id", "data"])
      .where("entry_id", "in", [...entryIds])
      .where("id", ">", after)
      .orderBy("id")
      .limit(ORDER_PAGE)
      .execute();
    for (const row of rows) {
      if (bytes + row.data.length > maxBytes) return { chunks, truncated: true };
      bytes += row.data.length;
      chunks.push({ entryId: row.entry_id, data: row.data });
    }
    if (rows.length < ORDER_PAGE) return { chunks, truncated: false };
    after = rows[rows.length - 1]!.id;
  }
}

/** The chunk reads of one store: SQLite's synchronous ones where they may run, Kysely's otherwise. */
export function chunkReads(store: Store) {
  const db = store.db;
  const sqlite = sqliteOf(store);
  prepareEarly(sqlite, chunkStatements);
  return {
    /** Chunks with seq in (after, after + limit], in order. */
    readChunksAfter: (entryId: number, after: number, limit: number): Promise<ChunkRow[]> => {
      const rows = sync(sqlite, (s) => s.after.all(entryId, after, limit));
      return rows === VIA_KYSELY ? readChunksAfter(db, entryId, after, limit) : Promise.resolve(rows);
    },
    /** Chunks of a producer's channels in stored order (see readInOrder). */
    readInOrder: (entryIds: readonly number[], maxBytes: number) => readInOrder(db, entryIds, maxBytes),
    /** Reads `count` lines starting at 0-based `line` (see linesOf). */
    readLines: (entryId: number, line: number, count: number, maxBytes: number, options?: LineReadOptions): Promise<LineRead> =>
      linesOf(db, sqlite, entryId, line, count, maxBytes, options),
  };
}
