import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Kysely } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { notReadyBecause } from "../../src/ops/health.js";
import { MIGRATIONS_DIR } from "../../src/server.js";
import type { Database } from "../../src/store/schema.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

describe("/healthz and /readyz", () => {
  let ts: TestServer | undefined;
  const dirs: string[] = [];
  afterEach(async () => {
    await ts?.stop();
    ts = undefined;
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
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

  it("/readyz is 503 when a migration in the server's folder is not applied", async () => {
    const migrations = tempDir("spool-migrations-");
    dirs.push(migrations);
    for (const file of readdirSync(MIGRATIONS_DIR)) if (file.endsWith(".sql")) copyFileSync(join(MIGRATIONS_DIR, file), join(migrations, file));
    mkdirSync(join(migrations, "postgres"));
    for (const file of readdirSync(join(MIGRATIONS_DIR, "postgres"))) copyFileSync(join(MIGRATIONS_DIR, "postgres", file), join(migrations, "postgres", file));
    ts = await startTestServer({ migrationsDir: migrations });
    expect((await fetch(`${base()}/readyz`)).status).toBe(200);
    writeFileSync(join(migrations, "999_later.sql"), "select 1;");
    writeFileSync(join(migrations, "postgres", "999_later.sql"), "select 1;");
    expect((await fetch(`${base()}/readyz`)).status).toBe(503);
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
    const reason = await notReadyBecause({ store: { ...ts.server.store, db: hanging }, migrationsDir: MIGRATIONS_DIR, lock }, 100);
    expect(reason).toBe("the store did not answer within 100 ms");
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await notReadyBecause({ store: ts.server.store, migrationsDir: MIGRATIONS_DIR, lock }, 100)).toBeNull();
  });
});
