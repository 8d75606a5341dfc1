import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateToLatest } from "../../src/store/migrator.js";
import { chunkSearch, SearchTimedOut } from "../../src/store/search/search.js";
import { openStore, type SqliteStore } from "../../src/store/sqlite/database.js";

/**
 * The search budget stays a guard with a linear-time engine: a search that has not got past its first line when its
 * budget ends has its worker ended and is refused (SearchTimedOut), and the next search, within budget, answers.
 */
describe("the search budget, as a guard", () => {
  let dir: string;
  let store: SqliteStore;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "spool-search-budget-"));
    store = openStore(join(dir, "spool.db"));
    await migrateToLatest(store);
    store.sqlite.exec(
      "INSERT INTO projects (id, name, root, created_at) VALUES (1, 'p', '/', 0); INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'r', 102, 0, 0);" +
        "INSERT INTO entries (id, run_id, path, scheme, turn, status, streamed, created_at, updated_at, attributes) VALUES (1, 1, 'sh://turn_1/x_1', 'sh', 1, 102, 1, 0, 0, '{}')",
    );
    const line = `${"build step output ".repeat(6)}\n`;
    for (let n = 1; n <= 64; n++) await store.appendChunk(1, Buffer.from(line.repeat(512)), n, 102);
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a search given 1 ms is ended and refused; with its budget it answers", async () => {
    const { search } = chunkSearch(store);
    const query = { pattern: "no such (line|word)", regex: true, ignoreCase: true, before: 0, after: 0, limit: 20, fromLine: 1, maxBytes: 256 * 1024 };
    await expect(search([1], query, 1)).rejects.toBeInstanceOf(SearchTimedOut);
    const answer = await search([1], query, 30_000);
    expect(answer.matches).toEqual([]);
    expect(answer.lines).toBe(64 * 512);
  });
});
