// No query looks chunks up by byte offset (reads go by seq or by line), yet every append wrote this index: one more
// B-tree leaf per channel in each group commit's WAL (bench/README.md, "Issue 24, the server's CPU per line").
// byte_offset stays in the table, where it is read with the chunk.
import type { SchemaMigration } from "./columns.js";

export const dropChunksByByte: SchemaMigration = {
  async up(db) {
    await db.schema.dropIndex("chunks_by_byte").ifExists().execute();
  },
};
