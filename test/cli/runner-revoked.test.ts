import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/errors.js";
import type { SpoolConfig } from "../../src/config/config.js";
import { openStore, type Store } from "../../src/store/sqlite/database.js";
import { freePort, type SpoolChild, spawnSpoolChild } from "../helpers/process.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * Issue 48, point 2: a runner whose credential is revoked or expires does not retry for ever (it logged
 * `reconnect failed: … HTTP 401` every 2.5 s): it stops, exits 3 and says why.
 */
describe("spool runner with a credential that stops working", () => {
  let ts: TestServer | null = null;
  afterEach(async () => {
    await ts?.stop();
    ts = null;
  });

  /** A runner credential for project `work`, written to a file. */
  async function runnerToken(server: TestServer, name: string, expiresAt?: number): Promise<string> {
    const admin = await server.client();
    const { token } = await admin.call("token/create", { name, role: "runner", projects: ["work"], ...(expiresAt ? { expiresAt } : {}) });
    const file = join(tempDir(), "token");
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    return file;
  }

  /** Ends a credential in the store of a stopped server (SQLite, or PostgreSQL with SPOOL_TEST_STORE): as if its expiry had passed. */
  async function expireInStore(config: SpoolConfig, name: string): Promise<void> {
    const store: Store = config.databaseUrl
      ? await (await import("../../src/store/postgres/postgres.js")).openPostgresStore(config.databaseUrl)
      : openStore(config.dbFile);
    try {
      const { numUpdatedRows } = await store.db
        .updateTable("principals")
        .set({ expires_at: Date.now() - 1000 })
        .where("name", "=", name)
        .executeTakeFirst();
      expect(numUpdatedRows).toBe(1n);
    } finally {
      await store.close();
    }
  }

  function startRunner(server: TestServer, tokenFile: string): SpoolChild {
    return spawnSpoolChild(["runner", "--server", server.server.url, "--token-file", tokenFile, "--project", "work", "--name", "box", "--backend", "local"], {
      SPOOL_HOME: tempDir(),
    });
  }

  it("token/revoke: the runner exits 3 at once, saying its credential was revoked", async () => {
    ts = await startTestServer({ localRunner: false });
    await ts.clientIn("work");
    const runner = startRunner(ts, await runnerToken(ts, "ci-runner"));
    await runner.waitFor(/Runner box attached/);
    const admin = await ts.client();
    await admin.call("token/revoke", { name: "ci-runner" });
    const { code } = await runner.exitsWithin(15_000);
    expect(code, runner.output()).toBe(EXIT.connection);
    expect(runner.stderr()).toMatch(/runner box stopped: its credential was revoked/);
    expect(runner.output()).not.toContain("reconnect failed");
  }, 60_000);

  it("a credential that expired while the server was away: the reconnect's HTTP 401 ends the runner with exit 3", async () => {
    const home = tempDir("spool-runner-expired-");
    const port = await freePort();
    ts = await startTestServer({ home, port, localRunner: false });
    await ts.clientIn("work");
    // An hour: the credential must not expire while the server is up (it would close the connection itself).
    const runner = startRunner(ts, await runnerToken(ts, "ci-runner", Date.now() + 3_600_000));
    await runner.waitFor(/Runner box attached/);
    const { config } = ts.server;
    await ts.stop();
    await runner.waitFor(/connection lost; reconnecting/, "stderr");
    // While the server is away its expiry passes (moved forward in the store, not waited for on the clock):
    // the server comes back and the runner's next attempt is refused (HTTP 401).
    await expireInStore(config, "ci-runner");
    ts = await startTestServer({ home, port, localRunner: false });
    const { code } = await runner.exitsWithin(20_000);
    expect(code, runner.output()).toBe(EXIT.connection);
    expect(runner.stderr()).toMatch(/runner box stopped: its credential was revoked or has expired \(.*HTTP 401/);
  }, 60_000);
});
