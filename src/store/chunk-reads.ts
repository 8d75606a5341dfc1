import SQLite from "better-sqlite3";
import type { Kysely } from "kysely";
import { countNewlines } from "./chunks.js";
import type { ChunkRow, Database } from "./schema.js";
import type { Store } from "./store.js";
import { prepareEarly, sqliteOf, statementsFor, syncRead, VIA_KYSELY } from "./sync-reads.js";

/**
 * Reads of streamed entries' chunks: synchronous on SQLite where they may be
 * (sync-reads.ts), through Kysely on PostgreSQL. A read of a few lines fetches
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

/** What a line read needs of a chunk. */
interface ChunkPart {
  seq: number;
  newlines: number;
  data: Buffer;
}

/** The chunk holding the start of 0-based line `line`, and the newlines of it before that line. */
interface Start {
  /** With its byte_offset when read through Kysely. */
  chunk: ChunkPart & { byte_offset?: number };
  skip: number;
}

export interface LineRead {
  data: Buffer;
  /** The same bytes as views of the rows read, in order, when `data` is joined only if asked for (a large read sent as bytes needs no joined copy). */
  parts?: readonly Buffer[];
  /** Lines in `data` (the last may lack its newline). */
  lines: number;
  /** True when `maxBytes` stopped the read before `count` lines. */
  truncated: boolean;
  /**
   * With `wholeLines`: the body is part of one line (longer than `maxBytes`, or read from `offset` into it) — its
   * bytes `offset` to `offset + bytes`; `end` when they reach the line's end (its newline, or the channel's end).
   */
  part?: { offset: number; bytes: number; end: boolean };
}

/** How a line read cuts: the options entry/get reads with (other readers keep the bytes up to maxBytes). */
export interface LineReadOptions {
  /**
   * A read cut by maxBytes ends after its last whole line; one whose first line alone is longer comes back as the
   * first maxBytes bytes of it, marked as a `part`.
   */
  wholeLines?: boolean;
  /** Bytes of the first line to skip: the read is the rest of that line from there, as a `part` (wholeLines). */
  offset?: number;
}

/** A line read whose `offset` lies past its line's end: the line holds `lineBytes` bytes (its newline counted). */
export class OffsetPastLine extends Error {
  constructor(readonly lineBytes: number) {
    super(`the line holds ${lineBytes} bytes`);
  }
}

const EMPTY: LineRead = Object.freeze({ data: Buffer.alloc(0), lines: 0, truncated: false }) as LineRead;

/** Offset just past the `n`-th newline (from 1) of `data[from..]`, which holds `total` of them (n <= total): searched from the nearer end. */
function afterNewline(data: Buffer, from: number, n: number, total: number): number {
  let at: number;
  if (n <= total - n) {
    at = from - 1;
    for (let i = 0; i < n; i++) at = data.indexOf(10, at + 1);
  } else {
    // The n-th from the start is the (total - n + 1)-th from the end.
    at = data.length;
    for (let i = total - n; i >= 0 && at > from; i--) at = data.lastIndexOf(10, at - 1);
  }
  return at + 1;
}

/**
 * Cuts `count` lines, after skipping `skip` newlines, out of chunks given in
 * order: the pieces are views of the chunks, copied once into the result.
 * Uses each chunk's stored newline count to take or skip it whole, and to
 * search for the line boundaries from its nearer end.
 */
class LineCutter {
  readonly #parts: Buffer[] = [];
  #size = 0;
  /** Newlines in the pieces (known from the stored counts unless maxBytes cut one). */
  #newlines = 0;
  #truncated = false;
  #skip: number;
  #remaining: number;
  /** Bytes of the first line still to skip (LineReadOptions.offset), and how many were skipped. */
  #skipBytes: number;
  #skipped = 0;
  readonly #wholeLines: boolean;
  readonly #offset: number | undefined;

  constructor(
    skip: number,
    count: number,
    private readonly maxBytes: number,
    options: LineReadOptions = {},
  ) {
    this.#skip = skip;
    this.#wholeLines = options.wholeLines === true || options.offset !== undefined;
    this.#offset = options.offset;
    this.#skipBytes = options.offset ?? 0;
    // From an offset, the read is the rest of one line.
    this.#remaining = options.offset === undefined ? count : 1;
  }

  /** Takes the next chunk; true once the read is complete (no later chunk is needed). */
  take({ data, newlines }: ChunkPart): boolean {
    let from = 0;
    let left = newlines;
    if (this.#skip > 0) {
      if (this.#skip > newlines) {
        // Every newline of the chunk is skipped; its bytes after the last one belong to the skipped line too.
        this.#skip -= newlines;
        return false;
      }
      from = afterNewline(data, 0, this.#skip, newlines);
      left = newlines - this.#skip;
      this.#skip = 0;
    }
    if (this.#skipBytes > 0) {
      // Within the line: its bytes in this chunk, its newline counted.
      const newline = data.indexOf(10, from);
      const span = (newline === -1 ? data.length : newline + 1) - from;
      if (this.#skipBytes >= span) {
        if (newline !== -1) throw new OffsetPastLine(this.#skipped + span);
        this.#skipBytes -= span;
        this.#skipped += span;
        return false;
      }
      from += this.#skipBytes;
      this.#skipped += this.#skipBytes;
      this.#skipBytes = 0;
    }
    if (from === data.length) return false;
    let end: number;
    if (this.#remaining > left) {
      // The whole rest of the chunk, its last line included even without its newline (the next chunk continues it).
      end = data.length;
      this.#remaining -= left;
      this.#newlines += left;
    } else {
      end = afterNewline(data, from, this.#remaining, left);
      this.#newlines += this.#remaining;
      this.#remaining = 0;
    }
    if (this.#size + (end - from) > this.maxBytes) {
      this.#parts.push(data.subarray(from, from + this.maxBytes - this.#size));
      this.#size = this.maxBytes;
      this.#truncated = true;
      return true;
    }
    this.#parts.push(data.subarray(from, end));
    this.#size += end - from;
    return this.#remaining === 0;
  }

  result(): LineRead {
    // An offset past the end of the channel's last line (one without its newline).
    if (this.#skipBytes > 0) throw new OffsetPastLine(this.#skipped);
    if (this.#offset !== undefined) {
      const data = Buffer.concat(this.#parts, this.#size);
      const end = !this.#truncated;
      return { data, lines: 0, truncated: this.#truncated, part: { offset: this.#offset, bytes: data.length, end } };
    }
    if (this.#size === 0) return { data: Buffer.alloc(0), lines: 0, truncated: this.#truncated };
    if (this.#truncated && this.#wholeLines) this.#toLastNewline();
    const parts = this.#parts;
    const size = this.#size;
    if (this.#truncated && this.#wholeLines && this.#newlines === -1) {
      // Its first line alone is longer than maxBytes: the first maxBytes bytes of it.
      const data = Buffer.concat(parts, size);
      return { data, lines: 0, truncated: true, part: { offset: 0, bytes: size, end: false } };
    }
    if (this.#truncated || parts.length === 1) {
      const data = Buffer.concat(parts, size);
      const partial = data[data.length - 1] !== 10 ? 1 : 0;
      return { data, lines: (this.#truncated ? countNewlines(data) : this.#newlines) + partial, truncated: this.#truncated };
    }
    // Not truncated: every piece holds bytes (an empty one is never taken).
    const last = parts[parts.length - 1]!;
    const partial = last[last.length - 1] !== 10 ? 1 : 0;
    // Joined when first asked for; `parts` is not enumerable, so the read looks (and compares) as before.
    let joined: Buffer | undefined;
    const read: LineRead = {
      get data() {
        joined ??= Buffer.concat(parts, size);
        return joined;
      },
      lines: this.#newlines + partial,
      truncated: false,
    };
    return Object.defineProperty(read, "parts", { value: parts });
  }

  /** Cuts the pieces of a truncated read after their last newline (none: #newlines becomes -1, the pieces stay). */
  #toLastNewline(): void {
    for (let i = this.#parts.length - 1; i >= 0; i--) {
      const piece = this.#parts[i]!;
      const at = piece.lastIndexOf(10);
      if (at === -1) continue;
      this.#parts.length = i + 1;
      this.#parts[i] = piece.subarray(0, at + 1);
      this.#size = this.#parts.reduce((sum, p) => sum + p.length, 0);
      return;
    }
    this.#newlines = -1;
  }
}

/**
 * Cuts `count` lines, after skipping `skip` newlines, out of chunks held in memory, as a read of the store does
 * (the server's warm-up runs the cutter once at start with it, so the first read after a start does not compile it).
 */
export function cutLines(
  chunks: readonly { newlines: number; data: Buffer }[],
  skip: number,
  count: number,
  maxBytes: number,
  options: LineReadOptions = {},
): LineRead {
  const cutter = new LineCutter(skip, count, maxBytes, options);
  for (const chunk of chunks) if (cutter.take({ seq: 0, ...chunk })) break;
  return cutter.result();
}

/** A chunk's place in its channel's lines, as the search for a line's chunk reads it. */
interface LinePlace {
  seq: number;
  line_offset: number;
  newlines: number;
}

/**
 * The search for the chunk holding the start of line `line` (> 0): the last chunk with fewer than `line` newlines
 * before it. A chunk's line_offset never decreases with its seq, so the search runs over seq on the (entry_id, seq)
 * key, given the channel's `last` chunk: that one when the line starts in it (a tail: no lookup more), else from
 * the seq the line would be in if the chunks held as many lines each (the channel's lines over its chunks), it
 * gallops up or down (spans 1, 2, 4…) past the line's chunk and then halves the gap: a few lookups for chunks of
 * even sizes, ~2·log2(chunks) at worst. The driver answers each seq yielded with the first chunk at or after it (a
 * gap in the seqs is stepped over).
 * SQLite has no chunks_by_line index (migration 012: each append wrote a leaf of it per channel and group commit).
 */
function* lastChunkBefore(line: number, last: LinePlace): Generator<number, number, LinePlace | undefined> {
  if (last.line_offset < line) return last.seq;
  const before = (row: LinePlace | undefined): row is LinePlace => row !== undefined && row.line_offset < line;
  /** The search's bounds: the chunk at `low` starts before the line (0: none does), none after `high` does. */
  let low = 0;
  let high = last.seq - 1;
  const lines = last.line_offset + last.newlines;
  const guess = lines > 0 ? Math.min(high, Math.max(1, Math.ceil((line * last.seq) / lines))) : high;
  if (high < 1) return 0;
  const first = yield guess;
  if (before(first)) {
    low = first.seq;
    for (let span = 1; low < high; span *= 2) {
      const at = Math.min(high, low + span);
      const row = yield at;
      if (!before(row)) {
        high = at - 1;
        break;
      }
      low = row.seq;
    }
  } else {
    high = guess - 1;
    for (let span = 1; low < high; span *= 2) {
      const at = Math.max(low + 1, high - span + 1);
      const row = yield at;
      if (before(row)) {
        low = row.seq;
        break;
      }
      high = at - 1;
    }
  }
  while (low < high) {
    const mid = low + Math.ceil((high - low) / 2);
    const row = yield mid;
    if (before(row)) low = row.seq;
    else high = mid - 1;
  }
  return low;
}

/**
 * The chunk holding the start of line `line` through Kysely (PostgreSQL, or SQLite inside a transaction), with its
 * data: on PostgreSQL one query over chunks_by_line, on SQLite (`bySeq`) the search above.
 */
async function startOf(db: Kysely<Database>, entryId: number, line: number, bySeq: boolean): Promise<Start | undefined> {
  const columns = ["seq", "line_offset", "byte_offset", "newlines", "data"] as const;
  if (line === 0) {
    const row = await db.selectFrom("chunks").select(columns).where("entry_id", "=", entryId).where("seq", ">", 0).orderBy("seq").limit(1).executeTakeFirst();
    return row && { chunk: row, skip: 0 };
  }
  if (bySeq) {
    const last = await db
      .selectFrom("chunks")
      .select(["seq", "line_offset", "newlines"])
      .where("entry_id", "=", entryId)
      .orderBy("seq", "desc")
      .limit(1)
      .executeTakeFirst();
    if (!last) return undefined;
    const search = lastChunkBefore(line, last);
    let step = search.next();
    while (!step.done) {
      const probe = await db
        .selectFrom("chunks")
        .select(["seq", "line_offset", "newlines"])
        .where("entry_id", "=", entryId)
        .where("seq", ">=", step.value)
        .orderBy("seq")
        .limit(1)
        .executeTakeFirst();
      step = search.next(probe);
    }
    if (step.value === 0) return undefined;
    const row = await db.selectFrom("chunks").select(columns).where("entry_id", "=", entryId).where("seq", "=", step.value).executeTakeFirst();
    return row && { chunk: row, skip: line - row.line_offset };
  }
  // The line starts after the line-th newline; it lies in the last chunk with fewer newlines before it.
  const row = await db
    .selectFrom("chunks")
    .select(columns)
    .where("entry_id", "=", entryId)
    .where("line_offset", "<", line)
    .orderBy("line_offset", "desc")
    .orderBy("seq", "desc")
    .limit(1)
    .executeTakeFirst();
  return row && { chunk: row, skip: line - row.line_offset };
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

/** A synchronous read over the chunk statements (see sync-reads.ts), or VIA_KYSELY. */
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
 * (bench/README.md, "Issue 24, what the first reads after a burst spend their CPU on"). Nothing of the store is read.
 */
export function memoryLineReads(chunks: readonly { newlines: number; data: Buffer }[]) {
  const sqlite = new SQLite(":memory:");
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
