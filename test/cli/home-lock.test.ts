// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { HomeLocked, LOCK_FILE, processStartTicks } from "../../src/home-lock.js";
import { spawnCli, spawnServe } from "../helpers/process.js";
import { startTestServer, tempDir } from "../helpers/server.js";

const lockOf = (home: string) => JSON.parse(readFileSync(join(home, LOCK_FILE), "utf8"));
const tokenOf = (home: string) => readFileSync(join(home, "token"), "utf8").trim();

describe("one server per Spool home", () => {
  it("a second `spool serve` on the same home refuses to start, naming the pid that holds it; the first keeps its work", async () => {
    const home = tempDir();
    const first = await spawnServe(["--port", "0", "--home", home, "--no-local-runner"]);
    try {
      expect(lockOf(home)).toMatchObject({ pid: first.child.pid });
      const client = await SpoolClient.connect(first.url, { token: tokenOf(home) });
      await client.initialize("locked", { root: home });
      await client.request("run/create", { alias: "r" });
      const pending = await client.request("proposal/create", { run: "r", tool: "sh", command: "waits" });
      const running = await client.request("proposal/create", { run: "r", tool: "sh", command: "streams" });
      await client.request("run/resolve", { run: "r", path: running.path, decision: "accept", runner: "self" });
      await client.request("stream", { run: "r", path: running.path, channel: 1, chunk: "one\n", seq: 1 });

      const second = spawnCli(["serve", "--port", "0", "--home", home], { SPOOL_RUNNER_GRACE_MS: "0" });
      expect(await second.exit).toBe(1);
      expect(second.stderr()).toContain(`spool serve: ${home} is in use by another Spool server: pid ${first.child.pid}`);
      expect(second.stderr()).toContain(join(home, LOCK_FILE));
      expect(second.stdout()).not.toContain("listening");

      // The first server did not notice: its lock, its producer and its proposal are as they were (a second
      // server that had opened the database would have reaped the streaming producer at once with a grace of 0).
      expect(lockOf(home)).toMatchObject({ pid: first.child.pid });
      await new Promise((r) => setTimeout(r, 300));
      expect((await client.request("entry/get", { run: "r", path: pending.path })).status).toBe(202);
      await client.request("stream", { run: "r", path: running.path, channel: 1, chunk: "two\n", seq: 2 });
      expect((await client.request("stream/completed", { run: "r", path: running.path, exit_code: 0 })).status).toBe(200);
      const out = (await client.request("entry/list", { run: "r", pattern: "sh://*_1" })).entries[0];
      expect(out).toMatchObject({ status: 200, bytes: 8, lines: 2 });
      client.close();
    } finally {
      expect(await first.stop()).toBe(0);
    }
    // Stopped cleanly: the lock is gone, and the next server starts.
    expect(existsSync(join(home, LOCK_FILE))).toBe(false);
    const next = await spawnServe(["--port", "0", "--home", home, "--no-local-runner"]);
    expect(await next.stop()).toBe(0);
  }, 60_000);

  it("the lock of a server killed without warning is stale: the next one takes it over and finds the data", async () => {
    const home = tempDir();
    const killed = await spawnServe(["--port", "0", "--home", home, "--no-local-runner"]);
    const client = await SpoolClient.connect(killed.url, { token: tokenOf(home) });
    await client.initialize("stale", { root: home });
    await client.request("run/create", { alias: "survivor" });
    client.close();
    await killed.stop("SIGKILL");
    expect(lockOf(home)).toMatchObject({ pid: killed.child.pid });

    const next = await spawnServe(["--port", "0", "--home", home, "--no-local-runner"]);
    try {
      expect(lockOf(home)).toMatchObject({ pid: next.child.pid });
      const again = await SpoolClient.connect(next.url, { token: tokenOf(home) });
      await again.initialize("stale");
      expect((await again.request("run/get", { run: "survivor" })).run.alias).toBe("survivor");
      again.close();
    } finally {
      expect(await next.stop()).toBe(0);
    }
  }, 60_000);

  it("servers racing for a home with a stale lock: exactly one starts", async () => {
    const home = tempDir();
    writeFileSync(join(home, LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 12345, startTicks: 1, startedAt: "long ago", hostname: "gone", nonce: "x" }));
    const racers = [0, 1, 2].map(() => spawnCli(["serve", "--port", "0", "--home", home, "--no-local-runner"]));
    const started = await Promise.all(
      racers.map((r) => Promise.race([r.waitFor(/Spool listening on/, "stdout", 60_000).then(() => true), r.exit.then(() => false)])),
    );
    expect(started.filter(Boolean)).toHaveLength(1);
    const winner = racers[started.indexOf(true)]!;
    expect(lockOf(home)).toMatchObject({ pid: winner.child.pid });
    for (const [i, r] of racers.entries()) {
      if (started[i]) continue;
      expect(await r.exit).toBe(1);
      expect(r.stderr()).toContain(`in use by another Spool server: pid ${winner.child.pid}`);
    }
    winner.child.kill("SIGTERM");
    expect(await winner.exit).toBe(0);
  }, 90_000);

  it("in one process too; a lock naming a live process is respected, one whose pid now belongs to another process or that is garbage is not", async () => {
    const home = tempDir();
    const first = await startTestServer({ home });
    const refused = await startTestServer({ home }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(HomeLocked);
    expect((refused as HomeLocked).owner.pid).toBe(process.pid);
    expect((await (await first.clientIn("same")).request("ping", {})).pong).toBe(true);
    await first.stop();

    // A live process (not a server, but alive and the one the lock names): refused, naming it.
    const sleeper = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      await new Promise((r) => sleeper.once("spawn", r));
      const pid = sleeper.pid!;
      const lock = { pid, startTicks: processStartTicks(pid), startedAt: "just now", hostname: "elsewhere", nonce: "n" };
      writeFileSync(join(home, LOCK_FILE), JSON.stringify(lock));
      await expect(startTestServer({ home })).rejects.toThrow(`pid ${pid}`);
      expect(lockOf(home)).toEqual(lock);
      // The same pid with another start time: the pid was reused by an unrelated process, the lock is stale.
      writeFileSync(join(home, LOCK_FILE), JSON.stringify({ ...lock, startTicks: lock.startTicks! - 1 }));
      const reused = await startTestServer({ home });
      expect(lockOf(home)).toMatchObject({ pid: process.pid });
      await reused.stop();
    } finally {
      sleeper.kill();
    }
    writeFileSync(join(home, LOCK_FILE), "not a lock\n");
    const afterGarbage = await startTestServer({ home });
    expect(lockOf(home)).toMatchObject({ pid: process.pid });
    await afterGarbage.stop();
    expect(existsSync(join(home, LOCK_FILE))).toBe(false);
  }, 60_000);
});
