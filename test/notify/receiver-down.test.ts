import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { openStore } from "../../src/store/sqlite/database.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { startReceiver } from "../helpers/receiver.js";
import { eventually, tempDir } from "../helpers/server.js";

// A receiver that is down (here: answering 503) costs a few attempts a period, not one per delivery it is owed: after a failure the
// sender rests, then tries one delivery (a probe) and sends the rest only once one went through (issue 46).

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const close of closers) await close();
});

/** A receiver that answers 503 to everything, counted. */
async function failing(): Promise<{ url: string; attempts(): number; reached(n: number): Promise<unknown> }> {
  const receiver = await startReceiver({ answers: Array.from({ length: 1000 }, () => 503) });
  closers.push(() => receiver.close());
  return { url: receiver.url, attempts: () => receiver.received.length, reached: (n) => receiver.waitFor(n, 15_000) };
}

describe("a receiver that is down", () => {
  it("spool serve warns once when a receiver starts failing and once when it takes deliveries again, not once a retry", async () => {
    const receiver = await startReceiver({ answers: [503, 503, 503] });
    closers.push(() => receiver.close());
    const home = tempDir();
    const root = tempDir("spool-root-");
    const serve = await spawnServe(["--port", String(await freePort()), "--home", home, "--no-local-runner"]);
    closers.push(async () => void (await serve.stop()));
    const admin = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    await admin.initialize("flaky", { root });
    await admin.call("notify/add", { name: "pager", url: receiver.url, events: ["proposal"] });
    await admin.call("run/create", { alias: "r" });
    for (let i = 0; i < 3; i++) await admin.call("proposal/create", { run: "r", tool: "sh", command: `echo ${i}` });
    // Three failed attempts, then every delivery goes through.
    await receiver.waitFor(6, 30_000);
    await eventually(async () => (await admin.call("notify/list", {})).targets[0]!.pending === 0, 20_000, "every delivery made");
    admin.close();
    await eventually(() => serve.output().includes('receiver "pager" takes deliveries again'), 5_000, "the recovery said");
    const lines = serve.output().split("\n");
    expect(
      lines.filter((l) => l.includes('notify: receiver "pager" is failing (HTTP 503')),
      serve.output(),
    ).toHaveLength(1);
    expect(
      lines.filter((l) => l.includes('notify: receiver "pager" takes deliveries again')),
      serve.output(),
    ).toHaveLength(1);
    expect(
      lines.filter((l) => /notify: delivery .* failed/.test(l)),
      serve.output(),
    ).toEqual([]);
  }, 60_000);

  it("gets one attempt a wave while it fails, however many deliveries it is owed", async () => {
    const down = await failing();
    const home = tempDir();
    const root = tempDir("spool-root-");
    let serve: ServeProcess | null = await spawnServe(["--port", String(await freePort()), "--home", home, "--no-local-runner"]);
    closers.push(async () => void (await serve?.stop()));
    const admin = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    await admin.initialize("down", { root });
    await admin.call("notify/add", { name: "down", url: down.url, events: ["proposal"] });
    await admin.call("run/create", { alias: "r" });
    await admin.call("proposal/create", { run: "r", tool: "sh", command: "echo first" });
    await down.reached(1);
    // The failure is recorded (the target rests) before more is owed.
    await eventually(async () => (await admin.call("notify/list", {})).targets.some((t) => t.lastError !== null), 5_000, "the failure recorded");
    // Owed 20 more while it rests after that failure.
    for (let i = 0; i < 20; i++) await admin.call("proposal/create", { run: "r", tool: "sh", command: `echo ${i}` });
    // Two more waves (about 1 s and 2 s after the failure): a probe each.
    await down.reached(3);
    admin.close();
    await serve.stop();
    serve = null;
    const store = openStore(join(home, "spool.db"));
    try {
      const rows = store.sqlite.prepare("SELECT attempts FROM notify_deliveries").pluck().all() as number[];
      expect(rows).toHaveLength(21);
      const attempts = rows.reduce((a, b) => a + b, 0);
      // Every attempt is counted when its row is claimed: as many as reached the receiver (a wave of eight would be 9 or more).
      expect(attempts).toBe(down.attempts());
      expect(attempts).toBeLessThanOrEqual(4);
    } finally {
      await store.close();
    }
  });
});
