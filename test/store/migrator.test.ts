import { join } from "node:path";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { SCHEMA_MIGRATIONS } from "../../migrations/index.js";
import { createLogger } from "../../src/logger.js";
import { startServer } from "../../src/server/server.js";
import { findRule, insertRule } from "../../src/store/allow-rules.js";
import { loadMigrations, MIGRATION_TABLE, MIGRATIONS_DIR, type MigrationSet, migrateToLatest } from "../../src/store/migrator.js";
import { nextRunNumber } from "../../src/store/runs.js";
import { openStore } from "../../src/store/sqlite/database.js";
import { legacySqlMigrations } from "../helpers/schema.js";
import { tempDir } from "../helpers/server.js";

function tables(file: string): string[] {
  const store = openStore(file);
  const names = store.sqlite.prepare("select name from sqlite_master where type = 'table' order by name").pluck().all() as string[];
  store.sqlite.close();
  return names;
}

/** A migration of plain SQL statements (SQLite's, run one by one as Kysely runs queries). */
function statements(...texts: string[]): MigrationSet[string] {
  return {
    async up(db) {
      for (const text of texts) await sql.raw(text).execute(db);
    },
  };
}

// Typed as the migrator takes them: `npm run typecheck` fails if migrations/ and src/store/migrator.ts part ways.
const schema: MigrationSet = SCHEMA_MIGRATIONS;
const core: MigrationSet = { "001_core.sql": schema["001_core.sql"]! };

describe("migrations", () => {
  it("are those of the top-level migrations/ folder, loaded at start, in the order of their names", async () => {
    expect(MIGRATIONS_DIR).toBe(join(import.meta.dirname, "..", "..", "migrations"));
    const loaded = await loadMigrations();
    expect(Object.keys(loaded)).toEqual(Object.keys(schema));
    expect(Object.keys(loaded)).toEqual(Object.keys(loaded).sort());
    expect(Object.keys(loaded)[0]).toBe("001_core.sql");
  });

  it("a folder without an index of migrations is refused, naming it", async () => {
    const empty = tempDir();
    await expect(loadMigrations(empty)).rejects.toThrow(`no migrations in ${empty} (index.js or index.ts)`);
  });

  it("applies every migration in order once, records it, and a second start is a no-op", async () => {
    const file = join(tempDir(), "spool.db");
    const store = openStore(file);
    const first = await migrateToLatest(store);
    expect(first.map((r) => [r.migrationName, r.status])).toContainEqual(["001_core.sql", "Success"]);
    const second = await migrateToLatest(store);
    expect(second).toEqual([]);
    const recorded = store.sqlite.prepare(`select name from ${MIGRATION_TABLE}`).pluck().all();
    expect(recorded).toContain("001_core.sql");
    expect(store.sqlite.pragma("journal_mode", { simple: true })).toBe("wal");
    await store.close();
    expect(tables(file)).toEqual(expect.arrayContaining(["projects", "runs", "loops", "entries", "chunks", "messages"]));
    expect(tables(file)).not.toContain("turns");
  });

  it("a failing migration leaves the database as it was and names the migration and the SQL error", async () => {
    const home = tempDir();
    // 002 creates a table and then fails: the table must not survive.
    const migrations = { ...core, "002_broken.sql": statements("CREATE TABLE half_done (id INTEGER)", "INSERT INTO no_such_table VALUES (1)") };
    const start = startServer({ home, port: 0, env: {}, logger: createLogger("silent"), migrations });
    await expect(start).rejects.toThrow(/Migration 002_broken\.sql failed: no such table: no_such_table/);
    const names = tables(join(home, "spool.db"));
    expect(names).not.toContain("half_done");
    expect(names).not.toContain("projects"); // 001 ran in the same start-up transaction, so it rolled back too
  });

  it("after a failed start, fixing the migration lets the next start apply it", async () => {
    const home = tempDir();
    const store = openStore(join(home, "spool.db"));
    await migrateToLatest(store, core);
    await expect(migrateToLatest(store, { ...core, "002_more.sql": statements("CREATE TABLE extra (id INTEGER)", "SELECT * FROM nope") })).rejects.toThrow(
      /002_more\.sql/,
    );
    const results = await migrateToLatest(store, { ...core, "002_more.sql": statements("CREATE TABLE extra (id INTEGER)") });
    expect(results.map((r) => r.migrationName)).toEqual(["002_more.sql"]);
    await store.close();
    expect(tables(join(home, "spool.db"))).toContain("extra");
  });

  it("a database from before per-project run numbers keeps working: each project continues after its highest run id", async () => {
    // Made by the .sql migrations of then, as such a database was.
    const store = openStore(join(tempDir(), "spool.db"));
    await migrateToLatest(store, legacySqlMigrations(store, "007"));
    // Named the old way, counted over all projects: a has run-1 and run-3, b has run-2.
    store.sqlite.exec(`INSERT INTO projects (id, name, root, created_at) VALUES (1, 'a', '/a', 0), (2, 'b', '/b', 0), (3, 'c', '/c', 0);
      INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'run-1', 200, 0, 0), (2, 2, 'run-2', 200, 0, 0), (3, 1, 'run-3', 200, 0, 0);`);
    expect((await migrateToLatest(store)).map((r) => r.migrationName)).toContain("007_run_numbers.sql");
    expect(await nextRunNumber(store.db, 1)).toBe(4);
    expect(await nextRunNumber(store.db, 2)).toBe(3);
    expect(await nextRunNumber(store.db, 3)).toBe(1);
    expect(await nextRunNumber(store.db, 3)).toBe(2);
    await store.close();
  });
  it('"always allow" rules from before every shown fact was compared match nothing; a rule matches its exact key only', async () => {
    const store = openStore(join(tempDir(), "spool.db"));
    await migrateToLatest(store, legacySqlMigrations(store, "010"));
    store.sqlite.exec(`INSERT INTO projects (id, name, root, created_at) VALUES (1, 'a', '/a', 0);
      INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'run-1', 200, 0, 0);
      INSERT INTO allow_rules (run_id, tool, command, cwd, env, runner, created_by, created_at) VALUES (1, 'sh', 'make', '/a', '{}', '', 'alice', 0);`);
    expect((await migrateToLatest(store)).map((r) => r.migrationName)).toContain("010_allow_rule_sandbox.sql");
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
