import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { ENTRY } from "../../src/protocol/status.js";
import { MIGRATIONS_DIR } from "../../src/server.js";
import { chunkReads } from "../../src/store/chunk-reads.js";
import { openStore, type SqliteStore } from "../../src/store/database.js";
import { migrateToLatest } from "../../src/store/migrator.js";
import { tempDir } from "../helpers/server.js";

/**
 * Every index on `chunks` is written by every append (a B-tree leaf per channel in each group commit's WAL), so on
 * SQLite the table keeps only its (entry_id, seq) key: the chunk holding a line is found by a search over seq (galloping down from the last chunk, then halving)
 * (chunk-reads.ts). Each read of the chunks (the statements of src/store/chunk-reads.ts and chunks.ts) still finds
 * its rows through the key, never a scan; the search's Kysely twin (a read made while a transaction of the Kysely
 * side is open) finds the same chunks.
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
  "SELECT seq FROM chunks WHERE entry_id = ? ORDER BY seq DESC LIMIT 1",
  "SELECT seq, line_offset FROM chunks WHERE entry_id = ? AND seq >= ? ORDER BY seq LIMIT 1",
  "SELECT seq, line_offset, newlines, data FROM chunks WHERE entry_id = ? AND seq = ?",
  "SELECT seq, newlines, data FROM chunks WHERE entry_id = ? AND seq > ? ORDER BY seq",
  "SELECT * FROM chunks WHERE entry_id = ? AND seq > ? ORDER BY seq LIMIT ?",
  "SELECT data FROM chunks WHERE entry_id = ? AND seq = ?",
];

describe("the indexes of chunks", () => {
  it("are the (entry_id, seq) key only: chunks_by_byte, read by nothing, and chunks_by_line are dropped", async () => {
    const store = await migrated();
    const indexes = store.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'chunks' ORDER BY name").pluck().all();
    expect(indexes).toEqual(["sqlite_autoindex_chunks_1"]);
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
      expect(plan[0], sql).toMatch(/^SEARCH chunks USING (COVERING )?INDEX sqlite_autoindex_chunks_1 \(entry_id=\?/);
    }
  });
});

describe("the search for a line's chunk on SQLite", () => {
  it("finds, for every line, the chunk a read starts in — synchronously, and through Kysely while a transaction is open", async () => {
    const store = await migrated();
    store.sqlite.exec(
      "INSERT INTO projects (id, name, root, created_at) VALUES (1, 'p', '/', 0); INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'r', 102, 0, 0)",
    );
    store.sqlite
      .prepare(
        "INSERT INTO entries (id, run_id, path, scheme, turn, status, streamed, created_at, updated_at) VALUES (1, 1, 'sh://turn_1/x_1', 'sh', 1, ?, 1, 0, 0)",
      )
      .run(ENTRY.streaming);
    // Chunks of 0 to 5 newlines, some empty, some without a newline, lines spanning several chunks; 1 to 300 of them.
    const pieces = ["", "a", "b\n", "\n\n", "cc", "d\ne\nf", "\n", "ggg\nhh\n\n\n\n", ""];
    const chunks: Buffer[] = [];
    for (let i = 0; i < 300; i++) chunks.push(Buffer.from(pieces[(i * 7) % pieces.length]! + (i % 11 === 0 ? "" : `${i}\n`)));
    const all = Buffer.concat(chunks);
    const lines = all.toString().split("\n");
    const reads = chunkReads(store);
    for (let i = 0; i < chunks.length; i++) await store.appendChunk(1, chunks[i]!, i + 1, ENTRY.streaming);
    for (let line = 0; line <= lines.length; line++) {
      const want = lines.slice(line, line + 2).join("\n") + (line + 2 < lines.length ? "\n" : "");
      expect((await reads.readLines(1, line, 2, 1 << 20)).data.toString(), `line ${line}`).toBe(want);
    }
    // While a transaction of the Kysely side is open, reads go through Kysely (queued behind it): the same search.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const transaction = store.db.transaction().execute(async (trx) => {
      await sql`SELECT 1`.execute(trx);
      entered();
      await gate;
    });
    await inside;
    expect(store.sqlite.inTransaction).toBe(true);
    const during = Array.from({ length: lines.length + 1 }, (_, line) => reads.readLines(1, line, 2, 1 << 20));
    release();
    await transaction;
    for (const [line, read] of during.entries()) {
      const want = lines.slice(line, line + 2).join("\n") + (line + 2 < lines.length ? "\n" : "");
      expect((await read).data.toString(), `kysely: line ${line}`).toBe(want);
    }
  });
});
