import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { entryGet } from "../../src/features/entries/get.js";
import { warmEntryGet, warmUps } from "../../src/ops/warm-up.js";
import { chunkReadStats, memoryLineReads } from "../../src/store/chunk-reads.js";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { createRepositories } from "../../src/store/repositories.js";
import { openStore } from "../../src/store/sqlite/database.js";
import { eventually, startTestServer, tempDir } from "../helpers/server.js";

describe("the warm-up of entry/get at start", () => {
  it("runs the handler on valid samples of entry/get's params and result (the paths real tails and slices take) and reads nothing of the store", async () => {
    expect(await warmEntryGet(entryGet)).toBe(true);
    const store = openStore(join(tempDir(), "spool.db"));
    try {
      await migrateToLatest(store, MIGRATIONS_DIR);
      const repos = createRepositories(store);
      expect(await warmEntryGet(entryGet, repos.chunks)).toBe(true);
      expect(await store.db.selectFrom("entries").select("id").execute()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("reads its made-up channel through the store's own line reads, each kind of read more than once", async () => {
    const rows = chunkReadStats.rows;
    expect(await warmEntryGet(entryGet)).toBe(true);
    // A tail (1 chunk), slices across two chunks (2 each) and at the start (1), WARM_ROUNDS (4) times: not the cutter alone.
    expect(chunkReadStats.rows - rows).toBe(4 * (1 + 2 + 2 + 1));
  });

  it("has line reads over a private in-memory channel that answer as a store's do", async () => {
    const data = Buffer.from("a\nb\nc");
    const memory = memoryLineReads([
      { newlines: 2, data },
      { newlines: 0, data: Buffer.from("d") },
      { newlines: 2, data: Buffer.from("e\nf\n") },
    ]);
    try {
      const text = async (line: number, count: number, maxBytes = 1024) => {
        const read = await memory.readLines(1, line, count, maxBytes);
        return [read.data.toString(), read.lines, read.truncated];
      };
      expect(await text(0, 2)).toEqual(["a\nb\n", 2, false]);
      // Line 2 is "c" + "d" + "e": it spans three chunks.
      expect(await text(2, 1)).toEqual(["cde\n", 1, false]);
      expect(await text(3, 5)).toEqual(["f\n", 1, false]);
      expect(await text(1, 3, 4)).toEqual(["b\ncd", 2, true]);
      expect(await text(9, 2)).toEqual(["", 0, false]);
      expect((await memory.readLines(2, 0, 2, 1024)).lines).toBe(0);
    } finally {
      memory.close();
    }
  });

  it("is run by the server once it listens, and ends with every reply as expected (a start without it fails here)", async () => {
    const before = { ...warmUps };
    const server = await startTestServer();
    try {
      await eventually(() => warmUps.done > before.done, 10_000, "the warm-up after the start");
      expect(warmUps.started - before.started).toBe(warmUps.done - before.done);
    } finally {
      await server.stop();
    }
  });
});
