import { sql, type Kysely } from "kysely";
import type { ChunkRow, Database, EntryRow } from "./schema.js";

export function countNewlines(data: Buffer): number {
  let count = 0;
  for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, i + 1)) count++;
  return count;
}

export type AppendOutcome =
  | { kind: "appended"; seq: number; bytes: number; lines: number; entry: EntryRow }
  | { kind: "duplicate"; seq: number; bytes: number; lines: number; entry: EntryRow }
  | { kind: "closed"; status: number }
  | { kind: "gap"; expected: number };

/**
 * Appends one chunk to a streamed entry: one INSERT and one UPDATE of the
 * counters, whatever the entry already holds. `seq` numbers the entry's
 * chunks from 1; a repeated one is acknowledged without writing.
 */
export async function appendChunk(
  db: Kysely<Database>,
  entryId: number,
  data: Buffer,
  seq: number | undefined,
): Promise<AppendOutcome> {
  return db.transaction().execute(async (trx) => {
    const entry = await trx.selectFrom("entries").selectAll().where("id", "=", entryId).executeTakeFirstOrThrow();
    const lines = (e: EntryRow) => e.newlines + (e.bytes > 0 && !e.ends_with_newline ? 1 : 0);
    if (seq !== undefined && seq <= entry.last_seq) {
      return { kind: "duplicate", seq, bytes: entry.bytes, lines: lines(entry), entry } as const;
    }
    if (entry.status !== 102) return { kind: "closed", status: entry.status } as const;
    const next = entry.last_seq + 1;
    if (seq !== undefined && seq !== next) return { kind: "gap", expected: next } as const;
    const newlines = countNewlines(data);
    await trx
      .insertInto("chunks")
      .values({ entry_id: entryId, seq: next, byte_offset: entry.bytes, line_offset: entry.newlines, newlines, data })
      .execute();
    const updated = {
      ...entry,
      bytes: entry.bytes + data.length,
      newlines: entry.newlines + newlines,
      ends_with_newline: data.length > 0 ? Number(data[data.length - 1] === 10) : entry.ends_with_newline,
      last_seq: next,
      updated_at: Date.now(),
    };
    await trx
      .updateTable("entries")
      .set({
        bytes: updated.bytes,
        newlines: updated.newlines,
        ends_with_newline: updated.ends_with_newline,
        last_seq: next,
        updated_at: updated.updated_at,
      })
      .where("id", "=", entryId)
      .execute();
    return { kind: "appended", seq: next, bytes: updated.bytes, lines: lines(updated), entry: updated } as const;
  });
}

/** Chunks with seq in (after, after + limit], in order. */
export function readChunksAfter(db: Kysely<Database>, entryId: number, after: number, limit: number): Promise<ChunkRow[]> {
  return db
    .selectFrom("chunks")
    .selectAll()
    .where("entry_id", "=", entryId)
    .where("seq", ">", after)
    .orderBy("seq")
    .limit(limit)
    .execute();
}

/** The chunk holding the start of line `line` (0-based): an index lookup, never a scan. */
async function chunkStartingLine(
  db: Kysely<Database>,
  entryId: number,
  line: number,
): Promise<{ seq: number; skipNewlines: number } | undefined> {
  if (line === 0) return { seq: 0, skipNewlines: 0 };
  // The line starts after the line-th newline; it lies in the last chunk with fewer newlines before it.
  const row = await db
    .selectFrom("chunks")
    .select(["seq", "line_offset"])
    .where("entry_id", "=", entryId)
    .where("line_offset", "<", line)
    .orderBy("line_offset", "desc")
    .orderBy("seq", "desc")
    .limit(1)
    .executeTakeFirst();
  return row ? { seq: row.seq - 1, skipNewlines: line - row.line_offset } : undefined;
}

export interface LineRead {
  data: Buffer;
  /** Lines in `data` (the last may lack its newline). */
  lines: number;
  /** True when `maxBytes` stopped the read before `count` lines. */
  truncated: boolean;
}

/**
 * Reads `count` lines starting at 0-based `line` from a streamed entry, reading
 * only the chunks that hold them.
 */
export async function readLines(
  db: Kysely<Database>,
  entryId: number,
  line: number,
  count: number,
  maxBytes: number,
): Promise<LineRead> {
  const start = await chunkStartingLine(db, entryId, line);
  if (!start || count <= 0) return { data: Buffer.alloc(0), lines: 0, truncated: false };
  const parts: Buffer[] = [];
  let size = 0;
  let toSkip = start.skipNewlines;
  let remaining = count;
  let after = start.seq;
  let truncated = false;
  outer: for (;;) {
    const page = await readChunksAfter(db, entryId, after, 16);
    if (page.length === 0) break;
    for (const chunk of page) {
      after = chunk.seq;
      let piece = chunk.data;
      while (toSkip > 0) {
        const nl = piece.indexOf(10);
        if (nl === -1) {
          piece = Buffer.alloc(0);
          break;
        }
        piece = piece.subarray(nl + 1);
        toSkip--;
      }
      if (toSkip > 0 || piece.length === 0) continue;
      let end = 0;
      while (remaining > 0) {
        const nl = piece.indexOf(10, end);
        if (nl === -1) {
          end = piece.length;
          break;
        }
        end = nl + 1;
        remaining--;
      }
      if (remaining === 0 && end === 0) break outer;
      piece = piece.subarray(0, end);
      if (size + piece.length > maxBytes) {
        parts.push(piece.subarray(0, maxBytes - size));
        size = maxBytes;
        truncated = true;
        break outer;
      }
      parts.push(piece);
      size += piece.length;
      if (remaining === 0) break outer;
    }
  }
  const data = Buffer.concat(parts, size);
  const partial = data.length > 0 && data[data.length - 1] !== 10 ? 1 : 0;
  return { data, lines: countNewlines(data) + partial, truncated };
}

/** Total bytes of chunks stored for an entry (used by integrity checks and tests). */
export async function storedBytes(db: Kysely<Database>, entryId: number): Promise<number> {
  const row = await db
    .selectFrom("chunks")
    .select(sql<number>`coalesce(sum(length(data)), 0)`.as("n"))
    .where("entry_id", "=", entryId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
