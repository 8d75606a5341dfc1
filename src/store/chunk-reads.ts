import type { Kysely } from "kysely";
import { countNewlines } from "./chunks.js";
import type { ChunkRow, Database } from "./schema.js";

/** Chunks with seq in (after, after + limit], in order. */
export function readChunksAfter(db: Kysely<Database>, entryId: number, after: number, limit: number): Promise<ChunkRow[]> {
  return db.selectFrom("chunks").selectAll().where("entry_id", "=", entryId).where("seq", ">", after).orderBy("seq").limit(limit).execute();
}

/** The chunk holding the start of line `line` (0-based): an index lookup, never a scan. */
async function chunkStartingLine(db: Kysely<Database>, entryId: number, line: number): Promise<{ seq: number; skipNewlines: number } | undefined> {
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
export async function readLines(db: Kysely<Database>, entryId: number, line: number, count: number, maxBytes: number): Promise<LineRead> {
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
