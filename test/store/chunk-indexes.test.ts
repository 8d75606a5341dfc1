import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MIGRATIONS_DIR } from "../../src/server.js";
import { openStore, type SqliteStore } from "../../src/store/database.js";
import { migrateToLatest } from "../../src/store/migrator.js";
import { tempDir } from "../helpers/server.js";

/**
 * Every index on `chunks` is written by every append (a B-tree leaf per channel in each group commit's WAL), so the
 * table keeps only the ones a read looks chunks up by: (entry_id, seq) and chunks_by_line. Each read of the chunks
 * (the statements of src/store/chunk-reads.ts and chunks.ts) still finds its rows through an index, never a scan.
 */

const open: SqliteStore[] = [];
afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
});

async function migrated(): Promise<SqliteStore> {
  const store = openStore(join(tempDir(), "spool.db"));
  open.push(store);
  await migrateToLatest(store, MIGRATIONS_DIR);
  return store;
}

/** The chunk reads' SQL, as src/store/chunk-reads.ts and chunks.ts prepare it. */
const READS = [
  "SELECT seq, newlines, data FROM chunks WHERE entry_id = ? AND seq > 0 ORDER BY seq LIMIT 1",
  "SELECT seq, line_offset, newlines, data FROM chunks WHERE entry_id = ? AND line_offset < ? ORDER BY line_offset DESC, seq DESC LIMIT 1",
  "SELECT seq, newlines, data FROM chunks WHERE entry_id = ? AND seq > ? ORDER BY seq",
  "SELECT * FROM chunks WHERE entry_id = ? AND seq > ? ORDER BY seq LIMIT ?",
  "SELECT data FROM chunks WHERE entry_id = ? AND seq = ?",
];

describe("the indexes of chunks", () => {
  it("are the (entry_id, seq) key and chunks_by_line only: chunks_by_byte, read by nothing, is dropped", async () => {
    const store = await migrated();
    const indexes = store.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'chunks' ORDER BY name").pluck().all();
    expect(indexes).toEqual(["chunks_by_line", "sqlite_autoindex_chunks_1"]);
    const unique = store.sqlite.prepare("SELECT name FROM pragma_index_info('sqlite_autoindex_chunks_1') ORDER BY seqno").pluck().all();
    expect(unique).toEqual(["entry_id", "seq"]);
  });

  it("leave every chunk read an index search, with no scan of the table and no sort", async () => {
    const store = await migrated();
    for (const sql of READS) {
      const plan = (
        store.sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(
          ...sql
            .split("?")
            .slice(1)
            .map(() => 1),
        ) as { detail: string }[]
      ).map((r) => r.detail);
      expect(plan, sql).toHaveLength(1);
      expect(plan[0], sql).toMatch(/^SEARCH chunks USING (COVERING )?INDEX (sqlite_autoindex_chunks_1|chunks_by_line) \(entry_id=\?/);
    }
  });
});
