import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Kysely, sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { notReadyBecause } from "../../src/ops/health.js";
import { loadMigrations, MIGRATION_TABLE } from "../../src/store/migrator.js";
import type { Database } from "../../src/store/schema.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

describe("/healthz and /readyz", () => {
  let ts: TestServer | undefined;
  afterEach(async () => {
    await ts?.stop();
    ts = undefined;
  });
  const base = () => `http://127.0.0.1:${ts!.server.port}`;

  it("answer ok without a token, and say nothing else", async () => {
    ts = await startTestServer();
    for (const path of ["/healthz", "/readyz"]) {
      const response = await fetch(`${base()}${path}`);
      expect(response.status, path).toBe(200);
      expect(await response.text(), path).toBe("ok\n");
      expect(response.headers.get("cache-control")).toBe("no-store");
    }
    const post = await fetch(`${base()}/readyz`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  it("/readyz is 503 once the home lock is no longer this server's, /healthz still 200", async () => {
    ts = await startTestServer();
    rmSync(join(ts.home, "spool.lock"));
    const ready = await fetch(`${base()}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toBe("not ready\n");
    expect((await fetch(`${base()}/healthz`)).status).toBe(200);
    // Another process's lock in its place: still not ours.
    writeFileSync(join(ts.home, "spool.lock"), JSON.stringify({ pid: 1, nonce: "other" }));
    expect((await fetch(`${base()}/readyz`)).status).toBe(503);
  });

  it("/readyz is 503 when a migration the server started with is not recorded in the database", async () => {
    ts = await startTestServer();
    expect((await fetch(`${base()}/readyz`)).status).toBe(200);
    // As a database restored from before the last migration, under a server that already migrated it.
    const last = Object.keys(await loadMigrations()).at(-1)!;
    await sql`delete from ${sql.table(MIGRATION_TABLE)} where name = ${last}`.execute(ts.server.store.db);
    expect((await fetch(`${base()}/readyz`)).status).toBe(503);
    const lock = { file: join(ts.home, "spool.lock"), owner: JSON.parse(readFileSync(join(ts.home, "spool.lock"), "utf8")), release() {} };
    expect(await notReadyBecause({ store: ts.server.store, migrations: [last], lock }, 1_000)).toBe(`migrations not applied: ${last}`);
  });

  it("calls a store that does not answer within the bound not ready", async () => {
    ts = await startTestServer();
    const real = ts.server.store.db;
    const executor = real.getExecutor();
    const hanging = {
      getExecutor: () => ({
        compileQuery: executor.compileQuery.bind(executor),
        transformQuery: executor.transformQuery.bind(executor),
        executeQuery: () => new Promise(() => {}),
      }),
    } as unknown as Kysely<Database>;
    const lock = { file: join(ts.home, "spool.lock"), owner: JSON.parse(readFileSync(join(ts.home, "spool.lock"), "utf8")), release() {} };
    const started = Date.now();
    const reason = await notReadyBecause({ store: { ...ts.server.store, db: hanging }, migrations: Object.keys(await loadMigrations()), lock }, 100);
    expect(reason).toBe("the store did not answer within 100 ms");
    // The deadline applied (without it the check waits for ever); 10 s leaves a busy machine room.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await notReadyBecause({ store: ts.server.store, migrations: Object.keys(await loadMigrations()), lock }, 100)).toBeNull();
  });
});
