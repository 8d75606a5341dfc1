import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCHEMA_MIGRATIONS } from "../../migrations/index.js";
import { MIGRATION_TABLE, migrateToLatest } from "../../src/store/migrator.js";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres/postgres.js";
import { openStore, type SqliteStore } from "../../src/store/sqlite/database.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import {
  LEGACY_SQL_DIR,
  legacySqlMigrations,
  normalised,
  postgresCheckLines,
  postgresChecks,
  postgresSchema,
  type SchemaShape,
  sqliteChecks,
  sqliteSchema,
} from "../helpers/schema.js";
import { tempDir } from "../helpers/server.js";

// One schema source for both databases (migrations/): what it makes on SQLite and on PostgreSQL is the same
// schema, the one the .sql files of before made on each, and a database those files made upgrades in place.

const names = Object.keys(SCHEMA_MIGRATIONS);
/** The migrations that were .sql files before (test/fixtures/sql-migrations); those after were TypeScript from the start. */
const legacyNames = names.filter((n) => n.endsWith(".sql"));

function sqlite(): SqliteStore {
  return openStore(join(tempDir(), "spool.db"));
}

async function sqliteShape(make: (store: SqliteStore) => Promise<unknown>): Promise<SchemaShape> {
  const store = sqlite();
  try {
    await make(store);
    return sqliteSchema(store);
  } finally {
    await store.close();
  }
}

describe("the schema on SQLite", () => {
  it("is the one the .sql migrations of before made, under the same migration names", async () => {
    const legacy = await sqliteShape(async (store) => {
      await migrateToLatest(store, legacySqlMigrations(store));
      await migrateToLatest(store);
    });
    const fresh = await sqliteShape((store) => migrateToLatest(store));
    expect(fresh).toEqual(legacy);
    expect(readdirSync(LEGACY_SQL_DIR).filter((f) => f.endsWith(".sql"))).toEqual(legacyNames);
    // What the schema is, read back, so a change to it shows here too.
    expect(Object.keys(fresh.tables).sort()).toEqual(
      [
        "allow_rules",
        "audit",
        "devices",
        "chunks",
        "cluster_events",
        "entries",
        "loops",
        "messages",
        "model_usage",
        "notify_deliveries",
        "notify_events",
        "notify_targets",
        "pending_counts",
        "principals",
        "producer_owners",
        "projects",
        "run_leases",
        "runner_locations",
        "runner_names",
        "runner_queue",
        "runs",
        "servers",
      ].sort(),
    );
  });

  it("a database made by the .sql migrations upgrades in place: nothing runs again, its rows stay, its schema is a fresh one's", async () => {
    const fresh = await sqliteShape((store) => migrateToLatest(store));
    const store = sqlite();
    try {
      expect((await migrateToLatest(store, legacySqlMigrations(store))).map((r) => r.migrationName)).toEqual(legacyNames);
      store.sqlite.exec(`INSERT INTO projects (id, name, root, created_at) VALUES (1, 'a', '/a', 0);
        INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'run-1', 200, 0, 0);`);
      // Only the migrations written in TypeScript from the start run.
      expect((await migrateToLatest(store)).map((r) => r.migrationName)).toEqual(names.filter((n) => !legacyNames.includes(n)));
      expect(store.sqlite.prepare(`SELECT count(*) FROM ${MIGRATION_TABLE}`).pluck().get()).toBe(names.length);
      expect(store.sqlite.prepare("SELECT alias FROM runs").pluck().all()).toEqual(["run-1"]);
      expect(sqliteSchema(store)).toEqual(fresh);
    } finally {
      await store.close();
    }
  });

  it("a database the .sql migrations took half way is finished by the TypeScript ones, the rows moved with their tables", async () => {
    const fresh = await sqliteShape((store) => migrateToLatest(store));
    const store = sqlite();
    try {
      await migrateToLatest(store, legacySqlMigrations(store, "009"));
      store.sqlite.exec(`INSERT INTO projects (id, name, root, created_at) VALUES (1, 'a', '/a', 0);
        INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'run-1', 200, 0, 0);
        INSERT INTO allow_rules (run_id, tool, command, cwd, env, created_by, created_at) VALUES (1, 'sh', 'make', '/a', '{}', 'alice', 5);`);
      expect((await migrateToLatest(store)).map((r) => [r.migrationName, r.status])).toEqual(names.filter((n) => n >= "009").map((n) => [n, "Success"]));
      expect(store.sqlite.prepare("SELECT run_id, command, runner, sandbox, created_by, created_at FROM allow_rules").all()).toEqual([
        { run_id: 1, command: "make", runner: "", sandbox: null, created_by: "alice", created_at: 5 },
      ]);
      expect(sqliteSchema(store)).toEqual(fresh);
    } finally {
      await store.close();
    }
  });
});

describeWithInfra("postgres", "the schema on PostgreSQL", () => {
  const databases: Awaited<ReturnType<typeof freshDatabase>>[] = [];
  const stores: PostgresStore[] = [];
  async function postgres(): Promise<PostgresStore> {
    const database = await freshDatabase();
    databases.push(database);
    const store = await openPostgresStore(database.url);
    stores.push(store);
    return store;
  }
  let fresh: PostgresStore;
  beforeAll(async () => {
    fresh = await postgres();
    await migrateToLatest(fresh);
  }, 60_000);
  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const database of databases) await database.drop();
  });

  it("is the one the .sql migrations of before made, CHECK constraints and index names too", async () => {
    const legacy = await postgres();
    await migrateToLatest(legacy, legacySqlMigrations(legacy));
    await migrateToLatest(legacy);
    expect(await postgresSchema(fresh)).toEqual(await postgresSchema(legacy));
    expect(await postgresChecks(fresh)).toEqual(await postgresChecks(legacy));
  });

  it("is SQLite's, but for the lines where the two databases differ on purpose", async () => {
    const pg = normalised(await postgresSchema(fresh));
    const lite = normalised(await sqliteShape((store) => migrateToLatest(store)));
    // PostgreSQL keeps chunks_by_line (012_drop_chunks_by_line says why) and makes allow_rules' key unique by the
    // hashes of its long texts (005_titles_and_allow_rules); nothing else may differ.
    const expected = lite.indexes.map((line) => (line.startsWith("allow_rules (") ? line.replace(/\b(command|cwd|env)\b/g, "md5($1)") : line));
    expected.push("chunks (entry_id, line_offset, seq)");
    expect(pg.indexes).toEqual(expected.sort());
    expect(pg.tables).toEqual(lite.tables);
    expect(pg.foreignKeys).toEqual(lite.foreignKeys);
    const store = sqlite();
    try {
      await migrateToLatest(store);
      const checks = sqliteChecks(store);
      expect(checks).toContain("principals.role in (runner, viewer, agent, person, admin)");
      expect(await postgresCheckLines(fresh)).toEqual(checks);
    } finally {
      await store.close();
    }
  });

  it("a database made by the .sql migrations upgrades in place: nothing runs again, its schema is a fresh one's", async () => {
    const store = await postgres();
    await migrateToLatest(store, legacySqlMigrations(store, "010"));
    await store.pool.query(`INSERT INTO projects (name, root, created_at) VALUES ('a', '/a', 0);
      INSERT INTO runs (project_id, alias, status, created_at, updated_at) VALUES (1, 'run-1', 200, 0, 0);
      INSERT INTO allow_rules (run_id, tool, command, cwd, env, runner, created_by, created_at) VALUES (1, 'sh', 'make', '/a', '{}', 'r', 'alice', 5);`);
    expect((await migrateToLatest(store, legacySqlMigrations(store))).map((r) => r.migrationName)).toEqual(legacyNames.filter((n) => n >= "010"));
    expect((await migrateToLatest(store)).map((r) => r.migrationName)).toEqual(names.filter((n) => !legacyNames.includes(n)));
    expect((await store.pool.query("SELECT command, runner, sandbox FROM allow_rules")).rows).toEqual([{ command: "make", runner: "r", sandbox: null }]);
    expect(await postgresSchema(store)).toEqual(await postgresSchema(fresh));
  });

  it("a database the .sql migrations took half way is finished by the TypeScript ones", async () => {
    const store = await postgres();
    await migrateToLatest(store, legacySqlMigrations(store, "009"));
    expect((await migrateToLatest(store)).map((r) => r.migrationName)).toEqual(names.filter((n) => n >= "009"));
    expect(await postgresSchema(store)).toEqual(await postgresSchema(fresh));
    expect(await postgresChecks(store)).toEqual(await postgresChecks(fresh));
  });
});
