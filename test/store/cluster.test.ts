import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY } from "../../src/core/status.js";
import { RUN } from "../../src/protocol/status.js";
import { MIGRATIONS_DIR, migrateToLatest } from "../../src/store/migrator.js";
import { openPostgresStore } from "../../src/store/postgres/postgres.js";
import { createRepositories, type Repositories } from "../../src/store/repositories.js";
import { openStore, type Store } from "../../src/store/sqlite/database.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { tempDir } from "../helpers/server.js";

/** The cluster tables' decisions, on each store: adoption and leases happen once, dead servers' rows do not count. */
function clusterSuite(open: () => Promise<{ store: Store; close(): Promise<void> }>) {
  let store: Store;
  let close: () => Promise<void>;
  let repos: Repositories;
  let runId: number;
  let projectId: number;

  beforeAll(async () => {
    ({ store, close } = await open());
    await migrateToLatest(store, MIGRATIONS_DIR);
    repos = createRepositories(store);
    const project = await repos.projects.createProject("cluster", "/tmp");
    projectId = project.id;
    const now = Date.now();
    runId = (await repos.runs.insertRun({ project_id: project.id, alias: "r", model: null, mode: "act", status: RUN.done, created_at: now, updated_at: now }))
      .id;
  });
  afterAll(() => close());

  /** A producer with one channel still streaming, owned (per its row) by `server`. */
  async function producer(n: number, server: number | null): Promise<number> {
    const now = Date.now();
    const log = await repos.entries.insertEntry({
      run_id: runId,
      path: `log://turn_1/sh/p${n}`,
      scheme: "log",
      turn: 1,
      status: ENTRY.done,
      created_at: now,
      updated_at: now,
    });
    await repos.entries.insertEntry({
      run_id: runId,
      path: `sh://turn_1/p${n}_1`,
      scheme: "sh",
      turn: 1,
      status: ENTRY.streaming,
      producer_id: log.id,
      channel: 1,
      created_at: now,
      updated_at: now,
    });
    if (server !== null) await repos.cluster.setOwner(log.id, server);
    return log.id;
  }

  it("two servers adopting a dead server's producers at the same moment adopt every orphan once between them, and nothing a living server holds", async () => {
    const dead = 99;
    const orphans = [];
    for (let n = 0; n < 20; n++) orphans.push(await producer(n, n % 4 === 0 ? null : dead));
    const kept = await producer(100, 2); // owned by a living server: nobody adopts it
    const [one, two] = await Promise.all([repos.cluster.adoptOrphans(1, [1, 2], ENTRY.streaming), repos.cluster.adoptOrphans(2, [1, 2], ENTRY.streaming)]);
    expect([...one, ...two].sort((a, b) => a - b)).toEqual(orphans);
    expect(one.filter((id) => two.includes(id))).toEqual([]);
    for (const id of one) expect(await repos.cluster.ownerServer(id)).toBe(1);
    for (const id of two) expect(await repos.cluster.ownerServer(id)).toBe(2);
    expect(await repos.cluster.ownerServer(kept)).toBe(2);
    // Adopted, they are held: a second look adopts nothing.
    expect(await repos.cluster.adoptOrphans(1, [1, 2], ENTRY.streaming)).toEqual([]);
    await repos.cluster.dropOwner(kept);
    expect(await repos.cluster.ownerServer(kept)).toBe(null);
  });

  it("a run's lease goes to one living server; a dead holder's lease is taken over", async () => {
    expect(await repos.cluster.acquireLease(runId, 1, [1, 2])).toBe(null);
    expect(await repos.cluster.acquireLease(runId, 2, [1, 2])).toBe(1);
    expect(await repos.cluster.acquireLease(runId, 1, [1, 2])).toBe(null);
    expect(await repos.cluster.orphanedLeases([2])).toEqual([runId]);
    expect(await repos.cluster.acquireLease(runId, 2, [2])).toBe(null);
    await repos.cluster.releaseLease(runId, 1); // not the holder: changes nothing
    expect(await repos.cluster.acquireLease(runId, 1, [1, 2])).toBe(2);
    await repos.cluster.releaseLease(runId, 2);
    expect(await repos.cluster.acquireLease(runId, 1, [1, 2])).toBe(null);
  });

  it("a runner's location counts while its server lives; the default is found by itself", async () => {
    await repos.cluster.placeRunner(projectId, "build", 1, true);
    await repos.cluster.placeRunner(projectId, "docs", 2, false);
    expect(await repos.cluster.findRunner(projectId, "build", [1, 2])).toEqual({ name: "build", server_id: 1 });
    expect(await repos.cluster.findRunner(projectId, null, [1, 2])).toEqual({ name: "build", server_id: 1 });
    expect(await repos.cluster.findRunner(projectId, "build", [2])).toBe(null);
    await repos.cluster.unplaceRunner(projectId, "docs", 1); // another server's row stays
    expect(await repos.cluster.findRunner(projectId, "docs", [1, 2])).toEqual({ name: "docs", server_id: 2 });
    await repos.cluster.placeRunner(projectId, "docs", 1, false); // it moved
    expect(await repos.cluster.findRunner(projectId, "docs", [1, 2])).toEqual({ name: "docs", server_id: 1 });
  });
}

describe("cluster tables on SQLite", () => {
  clusterSuite(async () => {
    const store = openStore(join(tempDir(), "spool.db"));
    return { store, close: () => store.close() };
  });
});

describeWithInfra("postgres", "cluster tables on PostgreSQL", () => {
  clusterSuite(async () => {
    const db = await freshDatabase();
    const store = await openPostgresStore(db.url);
    return {
      store,
      close: async () => {
        await store.close();
        await db.drop();
      },
    };
  });
});
