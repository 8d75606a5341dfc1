import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SCHEMA_MIGRATIONS } from "../../migrations/index.js";
import { migrateToLatest } from "../../src/store/migrator.js";
import { openPostgresStore } from "../../src/store/postgres/postgres.js";
import { openStore, type Store } from "../../src/store/sqlite/database.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { tempDir } from "../helpers/server.js";

// Migration 021: the proposals waiting per run and per principal are kept by the database's own triggers. Whatever
// inserts, decides, moves or deletes entries, the kept rows are the counts of the entries at 202, and a row at 0 is
// gone — on SQLite and on PostgreSQL, from a fresh schema and from one upgraded with proposals waiting.

interface Sql {
  exec(text: string): Promise<void>;
  rows(text: string): Promise<Record<string, unknown>[]>;
}

function sqlOf(store: Store): Sql {
  if (store.kind === "sqlite") {
    const { sqlite } = store as Store & { sqlite: import("better-sqlite3").Database };
    return { exec: async (text) => void sqlite.exec(text), rows: async (text) => sqlite.prepare(text).all() as Record<string, unknown>[] };
  }
  const { pool } = store as Store & { pool: import("pg").Pool };
  return { exec: async (text) => void (await pool.query(text)), rows: async (text) => (await pool.query(text)).rows };
}

/** The kept rows and the truth counted from entries, both as 'scope key n' lines. */
async function keptAndTruth(db: Sql): Promise<{ kept: string[]; truth: string[] }> {
  const kept = (await db.rows("SELECT scope, key, n FROM pending_counts")).map((r) => `${r.scope} ${r.key} ${Number(r.n)}`).sort();
  const byRun = await db.rows("SELECT CAST(run_id AS TEXT) AS key, count(*) AS n FROM entries WHERE status = 202 GROUP BY run_id");
  const byPrincipal = await db.rows(
    "SELECT proposed_by AS key, count(*) AS n FROM entries WHERE status = 202 AND proposed_by IS NOT NULL GROUP BY proposed_by",
  );
  const truth = [...byRun.map((r) => `run ${r.key} ${Number(r.n)}`), ...byPrincipal.map((r) => `principal ${r.key} ${Number(r.n)}`)].sort();
  return { kept, truth };
}

let next = 1;
function entry(run: number, status: number, by: string | null): string {
  const n = next++;
  return `INSERT INTO entries (run_id, path, scheme, turn, status, proposed_by, created_at, updated_at) VALUES (${run}, 'log://p${n}', 'log', 1, ${status}, ${by === null ? "NULL" : `'${by}'`}, 0, 0)`;
}

async function exercise(store: Store): Promise<void> {
  const db = sqlOf(store);
  next = 1;
  const check = async (kept: string[]) => {
    const now = await keptAndTruth(db);
    expect(now.kept).toEqual(now.truth);
    expect(now.kept).toEqual(kept.sort());
  };
  await db.exec("INSERT INTO projects (name, root, created_at) VALUES ('a', '/a', 0)");
  await db.exec("INSERT INTO runs (project_id, alias, status, created_at, updated_at) VALUES (1, 'r1', 200, 0, 0)");
  await db.exec("INSERT INTO runs (project_id, alias, status, created_at, updated_at) VALUES (1, 'r2', 200, 0, 0)");
  // Proposals of two principals in two runs, one of no principal (before migration 017), and entries not waiting.
  for (const text of [
    entry(1, 202, "alice"),
    entry(1, 202, "alice"),
    entry(2, 202, "alice"),
    entry(2, 202, "bob"),
    entry(1, 202, null),
    entry(1, 200, "bob"),
    entry(1, 102, null),
  ])
    await db.exec(text);
  await check(["run 1 3", "run 2 2", "principal alice 3", "principal bob 1"]);
  // A decision: the entry leaves 202.
  await db.exec("UPDATE entries SET status = 200 WHERE path = 'log://p1'");
  await db.exec("UPDATE entries SET status = 403 WHERE path = 'log://p4'");
  await check(["run 1 2", "run 2 1", "principal alice 2"]);
  // Updates that leave it where it was change nothing; one back to 202 counts again.
  await db.exec("UPDATE entries SET status = 202, updated_at = 5 WHERE path = 'log://p2'");
  await db.exec("UPDATE entries SET attributes = '{\"x\":1}' WHERE path = 'log://p3'");
  await db.exec("UPDATE entries SET status = 202 WHERE path = 'log://p4'");
  await check(["run 1 2", "run 2 2", "principal alice 2", "principal bob 1"]);
  // A waiting entry moved to another principal and run.
  await db.exec("UPDATE entries SET proposed_by = 'carol', run_id = 1 WHERE path = 'log://p4'");
  await check(["run 1 3", "run 2 1", "principal alice 2", "principal carol 1"]);
  // A run deleted with its entries (the cascade fires the triggers too).
  await db.exec("DELETE FROM entries WHERE run_id = 1");
  await check(["run 2 1", "principal alice 1"]);
  await db.exec("DELETE FROM entries");
  await check([]);
}

async function upgraded(store: Store): Promise<void> {
  const db = sqlOf(store);
  next = 1;
  const before = Object.fromEntries(Object.entries(SCHEMA_MIGRATIONS).filter(([name]) => name < "021"));
  await migrateToLatest(store, before);
  await db.exec("INSERT INTO projects (name, root, created_at) VALUES ('a', '/a', 0)");
  await db.exec("INSERT INTO runs (project_id, alias, status, created_at, updated_at) VALUES (1, 'r1', 200, 0, 0)");
  for (const text of [entry(1, 202, "alice"), entry(1, 202, null), entry(1, 200, "alice")]) await db.exec(text);
  await migrateToLatest(store);
  const now = await keptAndTruth(db);
  expect(now.kept).toEqual(["principal alice 1", "run 1 2"]);
  expect(now.kept).toEqual(now.truth);
}

describe("pending counts on SQLite", () => {
  it("are the entries waiting, whatever inserts, decides, moves or deletes them", async () => {
    const store = openStore(join(tempDir(), "spool.db"));
    try {
      await migrateToLatest(store);
      await exercise(store);
    } finally {
      await store.close();
    }
  });

  it("are counted from what waits when a database is upgraded", async () => {
    const store = openStore(join(tempDir(), "spool.db"));
    try {
      await upgraded(store);
    } finally {
      await store.close();
    }
  });
});

describeWithInfra("postgres", "pending counts on PostgreSQL", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const f of cleanup.reverse()) await f();
  });
  async function postgres(): Promise<Store> {
    const database = await freshDatabase();
    cleanup.push(() => database.drop());
    const store = await openPostgresStore(database.url);
    cleanup.push(() => store.close());
    return store;
  }

  it("are the entries waiting, whatever inserts, decides, moves or deletes them", async () => {
    const store = await postgres();
    await migrateToLatest(store);
    await exercise(store);
  });

  it("are counted from what waits when a database is upgraded", async () => {
    const store = await postgres();
    await upgraded(store);
  });
});
