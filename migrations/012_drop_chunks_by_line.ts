// The chunk holding a line is found by a search over seq (from where even chunks would put it, galloping, then
// halving) on the (entry_id, seq) key (a chunk's line_offset never decreases with its seq; src/store/chunk-reads.ts),
// so this index is no longer read on SQLite, yet every append wrote one of its leaves per channel and group commit:
// about a third of the WAL a 512-byte chunk cost (bench/README.md, "Issue 24, the server's CPU per line").
import type { SchemaMigration } from "./columns.js";

export const dropChunksByLine: SchemaMigration = {
  async up(db, dialect) {
    // PostgreSQL keeps chunks_by_line: its reads go through Kysely, a round trip each, so the start of a line is
    // found there with the index's one lookup, not a search of ~log2(chunks) queries.
    if (dialect === "postgres") return;
    await db.schema.dropIndex("chunks_by_line").ifExists().execute();
  },
};
