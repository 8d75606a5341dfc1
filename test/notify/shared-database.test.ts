import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { spawnServe } from "../helpers/process.js";
import { type Receiver, startReceiver } from "../helpers/receiver.js";
import { eventually, tempDir } from "../helpers/server.js";

// Two `spool serve` processes on one PostgreSQL database share one outbox: each delivery is taken by one of them
// at a time (FOR UPDATE SKIP LOCKED and a lease), so the receiver gets each exactly once even while both retry.

describeWithInfra("postgres", "notifications with servers sharing a database", () => {
  let hook: Receiver | null = null;
  let db: Awaited<ReturnType<typeof freshDatabase>> | null = null;
  afterAll(async () => {
    await hook?.close();
    await db?.drop();
  });

  it("delivers each notification once, whichever server proposed it and whichever retried it", async () => {
    db = await freshDatabase();
    // The first ten attempts fail and every answer is slow: both servers hold deliveries at once, and retry them.
    hook = await startReceiver({ answers: Array(10).fill(500), delayMs: 150 });
    const home = tempDir();
    const a = await spawnServe(["--port", "0", "--home", home, "--database", db.url, "--no-local-runner"]);
    const tokenFile = join(home, "token");
    const b = await spawnServe(["--port", "0", "--home", tempDir(), "--database", db.url, "--no-local-runner"], { SPOOL_TOKEN_FILE: tokenFile });
    const token = readFileSync(tokenFile, "utf8").trim();
    const root = tempDir("spool-root-");
    const [ca, cb] = await Promise.all(
      [a, b].map(async (s) => {
        const c = await SpoolClient.connect(s.url, { token });
        await c.initialize("shared", { root });
        return c;
      }),
    );
    try {
      await ca!.call("notify/add", { name: "once", url: hook.url, events: ["proposal"] });
      await ca!.call("run/create", { alias: "r" });
      const paths = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const c = i % 2 === 0 ? ca! : cb!;
        paths.add((await c.call("proposal/create", { run: "r", tool: "sh", command: `echo ${i}` })).path);
      }
      const got = await hook.waitFor(30, 60_000);
      const delivered = got.filter((r) => r.answered === 200);
      expect(delivered.length).toBe(20);
      expect(new Set(delivered.map((r) => r.headers["x-spool-delivery"])).size).toBe(20);
      expect(new Set(delivered.map((r) => (JSON.parse(r.body) as { path: string }).path))).toEqual(paths);
      // Nothing is owed any more, and nothing more comes: no second server sends one again.
      await eventually(async () => (await ca!.call("notify/list", {})).targets[0]!.pending === 0, 20_000, "the outbox to empty");
      expect(hook.received.filter((r) => r.answered === 200).length).toBe(20);
    } finally {
      ca!.close();
      cb!.close();
      await a.stop();
      await b.stop();
    }
  }, 240_000);
});
