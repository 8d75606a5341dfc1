import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { ENTRY } from "../../src/protocol/status.js";
import { chunkReads } from "../../src/store/chunk-reads.js";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { openStore, type SqliteStore } from "../../src/store/sqlite/database.js";
import { tempDir } from "../helpers/server.js";

/**
 * Every index on `chunks` is written by every append (a B-tree leaf per channel in each group commit's WAL), so on
 * SQLite the table keeps only its (entry_id, seq) key: the chunk holding a line is found by a search over seq (from where even chunks would put it, galloping, then halving)
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
  "SELECT seq, line_offset, newlines FROM chunks WHERE entry_id = ? ORDER BY seq DESC LIMIT 1",
  "SELECT seq, line_offset, newlines FROM chunks WHERE entry_id = ? AND seq >= ? ORDER BY seq LIMIT 1",
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
  /** Channels whose lines are spread unevenly over their chunks, so the search's first guess falls short, far, and right. */
  const shapes: Record<string, Buffer[]> = {
    // Chunks of 0 to 5 newlines, some empty, some without a newline, lines spanning several chunks.
    mixed: Array.from({ length: 300 }, (_, i) => {
      const pieces = ["", "a", "b\n", "\n\n", "cc", "d\ne\nf", "\n", "ggg\nhh\n\n\n\n", ""];
      return Buffer.from(pieces[(i * 7) % pieces.length]! + (i % 11 === 0 ? "" : `${i}\n`));
    }),
    // 150 chunks of one long line's pieces, then 150 of 10 lines: the guess lands far before the line's chunk.
    "dense last": Array.from({ length: 300 }, (_, i) => Buffer.from(i < 150 ? `x${i}` : `${i}\n`.repeat(10))),
    // 150 chunks of 10 lines, then 150 without a newline: far after it.
    "dense first": Array.from({ length: 300 }, (_, i) => Buffer.from(i < 150 ? `${i}\n`.repeat(10) : `y${i}`)),
    one: [Buffer.from("only\nchunk\n")],
    "no newline": Array.from({ length: 5 }, (_, i) => Buffer.from(`z${i}`)),
  };

  it("finds, for every line, the chunk a read starts in — synchronously, and through Kysely while a transaction is open", async () => {
    const store = await migrated();
    store.sqlite.exec(
      "INSERT INTO projects (id, name, root, created_at) VALUES (1, 'p', '/', 0); INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'r', 102, 0, 0)",
    );
    const reads = chunkReads(store);
    const channels = Object.entries(shapes).map(([name, chunks], i) => ({ name, id: i + 1, lines: Buffer.concat(chunks).toString().split("\n") }));
    for (const [i, chunks] of Object.values(shapes).entries()) {
      store.sqlite
        .prepare("INSERT INTO entries (id, run_id, path, scheme, turn, status, streamed, created_at, updated_at) VALUES (?, 1, ?, 'sh', 1, ?, 1, 0, 0)")
        .run(i + 1, `sh://turn_1/x_${i + 1}`, ENTRY.streaming);
      for (const [j, data] of chunks.entries()) await store.appendChunk(i + 1, data, j + 1, ENTRY.streaming);
    }
    const want = (lines: string[], line: number) => lines.slice(line, line + 2).join("\n") + (line + 2 < lines.length ? "\n" : "");
    for (const { name, id, lines } of channels) {
      for (let line = 0; line <= lines.length; line++) {
        expect((await reads.readLines(id, line, 2, 1 << 20)).data.toString(), `${name}: line ${line}`).toBe(want(lines, line));
      }
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
    const during = channels.map(({ id, lines }) => Array.from({ length: lines.length + 1 }, (_, line) => reads.readLines(id, line, 2, 1 << 20)));
    release();
    await transaction;
    for (const [c, { name, lines }] of channels.entries()) {
      for (const [line, read] of during[c]!.entries()) expect((await read).data.toString(), `kysely, ${name}: line ${line}`).toBe(want(lines, line));
    }
    // ~7,000 reads: 8-18 s quiet, up to 43 s in busy CI runs, which the default 60 s left too little room for.
  }, 300_000);
});
