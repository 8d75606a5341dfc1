import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { MIGRATIONS_DIR, startServer } from "../../src/server.js";
import { findRule, insertRule } from "../../src/store/allow-rules.js";
import { openStore } from "../../src/store/database.js";
import { MIGRATION_TABLE, migrateToLatest, migrationFiles } from "../../src/store/migrator.js";
import { nextRunNumber } from "../../src/store/runs.js";
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

  it("a database from before per-project run numbers keeps working: each project continues after its highest run id", async () => {
    const dir = join(tempDir(), "migrations");
    mkdirSync(dir);
    for (const file of migrationFiles(MIGRATIONS_DIR).filter((f) => f < "007")) copyFileSync(join(MIGRATIONS_DIR, file), join(dir, file));
    const store = openStore(join(tempDir(), "spool.db"));
    await migrateToLatest(store, dir);
    // Named the old way, counted over all projects: a has run-1 and run-3, b has run-2.
    store.sqlite.exec(`INSERT INTO projects (id, name, root, created_at) VALUES (1, 'a', '/a', 0), (2, 'b', '/b', 0), (3, 'c', '/c', 0);
      INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'run-1', 200, 0, 0), (2, 2, 'run-2', 200, 0, 0), (3, 1, 'run-3', 200, 0, 0);`);
    expect((await migrateToLatest(store, MIGRATIONS_DIR)).map((r) => r.migrationName)).toContain("007_run_numbers.sql");
    expect(await nextRunNumber(store.db, 1)).toBe(4);
    expect(await nextRunNumber(store.db, 2)).toBe(3);
    expect(await nextRunNumber(store.db, 3)).toBe(1);
    expect(await nextRunNumber(store.db, 3)).toBe(2);
    await store.close();
  });
  it('"always allow" rules from before every shown fact was compared match nothing; a rule matches its exact key only', async () => {
    const dir = join(tempDir(), "migrations");
    mkdirSync(dir);
    for (const file of migrationFiles(MIGRATIONS_DIR).filter((f) => f < "010")) copyFileSync(join(MIGRATIONS_DIR, file), join(dir, file));
    const store = openStore(join(tempDir(), "spool.db"));
    await migrateToLatest(store, dir);
    store.sqlite.exec(`INSERT INTO projects (id, name, root, created_at) VALUES (1, 'a', '/a', 0);
      INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'run-1', 200, 0, 0);
      INSERT INTO allow_rules (run_id, tool, command, cwd, env, runner, created_by, created_at) VALUES (1, 'sh', 'make', '/a', '{}', '', 'alice', 0);`);
    expect((await migrateToLatest(store, MIGRATIONS_DIR)).map((r) => r.migrationName)).toContain("010_allow_rule_sandbox.sql");
    // A rule stored before modes (sandbox NULL) holds neither a mode nor the other facts: it accepts nothing.
    const key = { run_id: 1, tool: "sh", command: "make", cwd: "/a", env: "{}", runner: "" };
    for (const sandbox of ["read-only", "workspace-write", "full"] as const) expect(await findRule(store.db, { ...key, sandbox })).toBeUndefined();
    const facts = JSON.stringify({ env: [], tty: null, background: false, timeoutMs: null });
    const boxed = await insertRule(store.db, { ...key, env: facts, runner: "local", sandbox: "workspace-write", created_by: "bob" });
    expect(await findRule(store.db, { ...key, env: facts, runner: "local", sandbox: "workspace-write" })).toEqual(boxed);
    // Another mode, even a narrower one, another runner or other facts: not what the person was shown.
    expect(await findRule(store.db, { ...key, env: facts, runner: "local", sandbox: "read-only" })).toBeUndefined();
    expect(await findRule(store.db, { ...key, env: facts, runner: "other", sandbox: "workspace-write" })).toBeUndefined();
    expect(
      await findRule(store.db, { ...key, env: facts.replace('"tty":null', '"tty":{"cols":80,"rows":24}'), runner: "local", sandbox: "workspace-write" }),
    ).toBeUndefined();
    // The same rule twice is the one row.
    expect(await insertRule(store.db, { ...key, env: facts, runner: "local", sandbox: "workspace-write", created_by: "carol" })).toEqual(boxed);
    await store.close();
  });
});
