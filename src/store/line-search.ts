/** The search for the chunk that holds the start of a line: over seq on SQLite, over chunks_by_line on PostgreSQL. */
import type { Kysely } from "kysely";
import type { ChunkPart } from "./line-cutter.js";
import type { Database } from "./schema.js";

/** The chunk holding the start of 0-based line `line`, and the newlines of it before that line. */
export interface Start {
  /** With its byte_offset when read through Kysely. */
  chunk: ChunkPart & { byte_offset?: number };
  skip: number;
}

/** A chunk's place in its channel's lines, as the search for a line's chunk reads it. */
export interface LinePlace {
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
export function* lastChunkBefore(line: number, last: LinePlace): Generator<number, number, LinePlace | undefined> {
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
export async function startOf(db: Kysely<Database>, entryId: number, line: number, bySeq: boolean): Promise<Start | undefined> {
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
