import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SCHEMA_MIGRATIONS } from "../../migrations/index.js";
import { migrateToLatest } from "../../src/store/migrator.js";
import { openPostgresStore } from "../../src/store/postgres/postgres.js";
import { createRepositories } from "../../src/store/repositories.js";
import { openStore, type Store } from "../../src/store/sqlite/database.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { tempDir } from "../helpers/server.js";

// Migration 024: a credential's share is the token id of the principal the home minted at the top of its minting,
// given to the rows a database held before; and a principal's waiting proposals are counted with its whole share's,
// on SQLite (the prepared statement) and PostgreSQL (Kysely) alike.

async function exec(store: Store, text: string): Promise<void> {
  if (store.kind === "sqlite") (store as Store & { sqlite: import("better-sqlite3").Database }).sqlite.exec(text);
  else await (store as Store & { pool: import("pg").Pool }).pool.query(text);
}

const principal = (id: number, name: string, by: string, revoked: number | null = null) =>
  `INSERT INTO principals (name, role, projects, token_id, secret_hash, created_by, created_at, revoked_at) VALUES ('${name}', 'agent', NULL, 't${id}', 'h', '${by}', ${id}, ${revoked ?? "NULL"})`;

const waiting = (n: number, by: string) =>
  `INSERT INTO entries (run_id, path, scheme, turn, status, proposed_by, created_at, updated_at) VALUES (1, 'log://w${n}', 'log', 1, 202, '${by}', 0, 0)`;

async function exercise(store: Store): Promise<void> {
  await migrateToLatest(store, Object.fromEntries(Object.entries(SCHEMA_MIGRATIONS).filter(([name]) => name < "024")));
  // ops (minted by the home) minted bot; bot minted sub; "ops" was revoked and a new ops (the home's again) made later.
  for (const text of [
    principal(1, "ops", "admin", 5),
    principal(2, "bot", "ops"),
    principal(3, "sub", "bot"),
    principal(4, "solo", "admin"),
    principal(6, "ops", "admin"),
  ])
    await exec(store, text);
  await migrateToLatest(store);
  const repos = createRepositories(store);
  const shares = Object.fromEntries((await repos.principals.listPrincipals({ revoked: true })).map((row) => [`${row.name}@${row.token_id}`, row.share]));
  expect(shares).toEqual({ "ops@t1": "t1", "bot@t2": "t1", "sub@t3": "t1", "solo@t4": "t4", "ops@t6": "t6" });
  await exec(store, "INSERT INTO projects (name, root, created_at) VALUES ('a', '/a', 0)");
  await exec(store, "INSERT INTO runs (project_id, alias, status, created_at, updated_at) VALUES (1, 'r1', 200, 0, 0)");
  let n = 0;
  for (const by of ["bot", "bot", "sub", "solo", "ops"]) await exec(store, waiting(++n, by));
  // bot and sub share t1 (the first ops, revoked: its own proposals no longer count); solo and the new ops their own.
  expect(await repos.entries.countPending(1, "bot")).toEqual({ run: 5, principal: 3, share: "t1" });
  expect(await repos.entries.countPending(1, "sub")).toEqual({ run: 5, principal: 3, share: "t1" });
  expect(await repos.entries.countPending(1, "solo")).toEqual({ run: 5, principal: 1, share: "t4" });
  expect(await repos.entries.countPending(1, "ops")).toEqual({ run: 5, principal: 1, share: "t6" });
  // A name no live principal holds counts its own, and has no share.
  expect(await repos.entries.countPending(1, "nobody")).toEqual({ run: 5, principal: 0, share: null });
}

describe("principal shares on SQLite", () => {
  it("are given to the rows from before, and a share's waiting proposals are counted together", async () => {
    const store = openStore(join(tempDir(), "spool.db"));
    try {
      await exercise(store);
    } finally {
      await store.close();
    }
  });
});

describeWithInfra("postgres", "principal shares on PostgreSQL", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  it("are given to the rows from before, and a share's waiting proposals are counted together", async () => {
    const database = await freshDatabase();
    cleanup.push(() => database.drop());
    const store = await openPostgresStore(database.url);
    cleanup.push(() => store.close());
    await exercise(store);
  });
});
