import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { MIGRATIONS_DIR, startServer } from "../../src/server.js";
import { openStore } from "../../src/store/database.js";
import { MIGRATION_TABLE, migrateToLatest } from "../../src/store/migrator.js";
import { tempDir } from "../helpers/server.js";

function tables(file: string): string[] {
  const store = openStore(file);
  const names = store.sqlite.prepare("select name from sqlite_master where type = 'table' order by name").pluck().all() as string[];
  store.sqlite.close();
  return names;
}

describe("SQL-file migrations", () => {
  it("applies every file in order once, records it, and a second start is a no-op", async () => {
    const file = join(tempDir(), "spool.db");
    const store = openStore(file);
    const first = await migrateToLatest(store, MIGRATIONS_DIR);
    expect(first.map((r) => [r.migrationName, r.status])).toContainEqual(["001_core.sql", "Success"]);
    const second = await migrateToLatest(store, MIGRATIONS_DIR);
    expect(second).toEqual([]);
    const recorded = store.sqlite.prepare(`select name from ${MIGRATION_TABLE}`).pluck().all();
    expect(recorded).toContain("001_core.sql");
    expect(store.sqlite.pragma("journal_mode", { simple: true })).toBe("wal");
    await store.close();
    expect(tables(file)).toEqual(expect.arrayContaining(["projects", "runs", "loops", "entries", "chunks", "messages"]));
    expect(tables(file)).not.toContain("turns");
  });

  it("a failing migration leaves the database as it was and names the file and the SQL error", async () => {
    const home = tempDir();
    const dir = join(home, "migrations");
    mkdirSync(dir);
    copyFileSync(join(MIGRATIONS_DIR, "001_core.sql"), join(dir, "001_core.sql"));
    // 002 creates a table and then fails: the table must not survive.
    writeFileSync(join(dir, "002_broken.sql"), "CREATE TABLE half_done (id INTEGER);\nINSERT INTO no_such_table VALUES (1);\n");
    const start = startServer({ home, port: 0, env: {}, logger: createLogger("silent"), migrationsDir: dir });
    await expect(start).rejects.toThrow(/Migration 002_broken\.sql failed: no such table: no_such_table/);
    const names = tables(join(home, "spool.db"));
    expect(names).not.toContain("half_done");
    expect(names).not.toContain("projects"); // 001 ran in the same start-up transaction, so it rolled back too
  });

  it("after a failed start, fixing the file lets the next start apply it", async () => {
    const home = tempDir();
    const dir = join(home, "migrations");
    mkdirSync(dir);
    copyFileSync(join(MIGRATIONS_DIR, "001_core.sql"), join(dir, "001_core.sql"));
    const store = openStore(join(home, "spool.db"));
    await migrateToLatest(store, dir);
    writeFileSync(join(dir, "002_more.sql"), "CREATE TABLE extra (id INTEGER);\nSELECT * FROM nope;\n");
    await expect(migrateToLatest(store, dir)).rejects.toThrow(/002_more\.sql/);
    writeFileSync(join(dir, "002_more.sql"), "CREATE TABLE extra (id INTEGER);\n");
    const results = await migrateToLatest(store, dir);
    expect(results.map((r) => r.migrationName)).toEqual(["002_more.sql"]);
    await store.close();
    expect(tables(join(home, "spool.db"))).toContain("extra");
  });
});
