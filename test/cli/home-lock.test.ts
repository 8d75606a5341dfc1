// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { HomeLocked, LOCK_FILE, processStartTicks } from "../../src/home/lock.js";
import { ENTRY } from "../../src/protocol/status.js";
import { SPOOL_BIN, spawnCli, spawnServe } from "../helpers/process.js";
import { eventually, startTestServer, tempDir } from "../helpers/server.js";

const lockOf = (home: string) => JSON.parse(readFileSync(join(home, LOCK_FILE), "utf8"));
const tokenOf = (home: string) => readFileSync(join(home, "token"), "utf8").trim();

/** The state letter of a process (/proc/<pid>/stat field 3): Z for a zombie; null once it is gone. */
function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] ?? null;
  } catch {
    return null;
  }
}

/**
 * `spool serve` started by a parent that never reaps it (the shell `exec`s into `sleep`): once killed, the
 * server stays a zombie for as long as the parent lives, as under a container's init that reaps late.
 */
function serveUnreaped(home: string): Promise<{ pid: number; url: string; parent: ChildProcess }> {
  const parent = spawn(
    "/bin/sh",
    ["-c", `"$0" "$1" serve --port 0 --no-local-runner --home "$2" 2>&1 & echo "pid $!"; exec sleep 300`, process.execPath, SPOOL_BIN, home],
    {
      env: { ...process.env, SPOOL_LOG: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  return new Promise((resolve, reject) => {
    parent.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const pid = /pid (\d+)/.exec(out);
      const url = /Spool listening on (ws:\/\/\S+)/.exec(out);
      if (pid && url) resolve({ pid: Number(pid[1]), url: url[1]!, parent });
      else if (/spool serve: /.test(out)) {
        parent.kill("SIGKILL");
        reject(new Error(`spool serve did not start:\n${out}`));
      }
    });
  });
}

describe("one server per Spool home", () => {
  it("a server killed mid-stream and started again at once on its home starts, while the killed one is still exiting or a zombie; several rounds", async () => {
    const home = tempDir();
    const root = tempDir("spool-root-");
    const parents: ChildProcess[] = [];
    try {
      let previous: { pid: number } | null = null;
      for (let round = 0; round < 4; round++) {
        const server = await serveUnreaped(home);
        parents.push(server.parent);
        // The one killed before it is dead but not reaped: its parent never waits.
        if (previous) expect(procState(previous.pid)).toBe("Z");
        expect(lockOf(home)).toMatchObject({ pid: server.pid });
        const client = await SpoolClient.connect(server.url, { token: tokenOf(home) });
        await client.initialize("zombies", { root });
        // What the rounds before stored is all there.
        for (let earlier = 0; earlier < round; earlier++) {
          const out = (await client.call("entry/list", { run: `r${earlier}`, pattern: "sh://*_1" })).entries[0];
          expect((await client.call("entry/get", { run: `r${earlier}`, path: out!.path })).body).toBe("one\ntwo\n");
        }
        await client.call("run/create", { alias: `r${round}` });
        const { path } = await client.call("proposal/create", { run: `r${round}`, tool: "sh", sandbox: "full", command: "streams" });
        await client.call("run/resolve", { run: `r${round}`, path, decision: "accept", runner: "self" });
        await client.call("stream", { run: `r${round}`, path, channel: 1, chunk: "one\n", seq: 1 });
        await client.call("stream", { run: `r${round}`, path, channel: 1, chunk: "two\n", seq: 2 });
        // Killed mid-stream, the producer still open.
        process.kill(server.pid, "SIGKILL");
        client.close();
        // Every other round the next start comes only once the killed one is a zombie; otherwise at once, while it
        // may still be tearing down.
        if (round % 2 === 1) await eventually(() => procState(server.pid) === "Z", 10_000, "the killed server to be a zombie");
        previous = server;
      }
    } finally {
      for (const parent of parents) parent.kill("SIGKILL");
    }
  }, 120_000);

  it("a second `spool serve` on the same home refuses to start, naming the pid that holds it; the first keeps its work", async () => {
    const home = tempDir();
    const first = await spawnServe(["--port", "0", "--home", home, "--no-local-runner"]);
    try {
      expect(lockOf(home)).toMatchObject({ pid: first.child.pid });
      const client = await SpoolClient.connect(first.url, { token: tokenOf(home) });
      await client.initialize("locked", { root: tempDir("spool-root-") });
      await client.call("run/create", { alias: "r" });
      const pending = await client.call("proposal/create", { run: "r", tool: "sh", command: "waits" });
      const running = await client.call("proposal/create", { run: "r", tool: "sh", sandbox: "full", command: "streams" });
      await client.call("run/resolve", { run: "r", path: running.path, decision: "accept", runner: "self" });
      await client.call("stream", { run: "r", path: running.path, channel: 1, chunk: "one\n", seq: 1 });

      const second = spawnCli(["serve", "--port", "0", "--home", home], { SPOOL_RUNNER_GRACE_MS: "0" });
      expect(await second.exit).toBe(1);
      expect(second.stderr()).toContain(`spool serve: ${home} is in use by another Spool server: pid ${first.child.pid}`);
      expect(second.stderr()).toContain(join(home, LOCK_FILE));
      expect(second.stdout()).not.toContain("listening");

      // The first server did not notice: its lock, its producer and its proposal are as they were (a second
      // server that had opened the database would have reaped the streaming producer at once with a grace of 0).
      expect(lockOf(home)).toMatchObject({ pid: first.child.pid });
      await new Promise((r) => setTimeout(r, 300));
      expect((await client.call("entry/get", { run: "r", path: pending.path })).status).toBe(ENTRY.proposed);
      await client.call("stream", { run: "r", path: running.path, channel: 1, chunk: "two\n", seq: 2 });
      expect((await client.call("stream/completed", { run: "r", path: running.path, exit_code: 0 })).status).toBe(ENTRY.done);
      const out = (await client.call("entry/list", { run: "r", pattern: "sh://*_1" })).entries[0];
      expect(out).toMatchObject({ status: ENTRY.done, bytes: 8, lines: 2 });
      client.close();
    } finally {
      expect(await first.stop()).toBe(0);
    }
    // Stopped cleanly: the lock is gone, and the next server starts (in this process: the lock is taken by the same
    // startServer whichever process runs it, and a `spool serve` costs ~2 s of CPU).
    expect(existsSync(join(home, LOCK_FILE))).toBe(false);
    const next = await startTestServer({ home, localRunner: false, database: "" });
    await next.stop();
  }, 60_000);

  it("the lock of a server killed without warning is stale: the next one takes it over and finds the data", async () => {
    const home = tempDir();
    const killed = await spawnServe(["--port", "0", "--home", home, "--no-local-runner"]);
    const client = await SpoolClient.connect(killed.url, { token: tokenOf(home) });
    await client.initialize("stale", { root: tempDir("spool-root-") });
    await client.call("run/create", { alias: "survivor" });
    client.close();
    await killed.stop("SIGKILL");
    expect(lockOf(home)).toMatchObject({ pid: killed.child.pid });

    // The next one in this process (the killed one is what must be a process of its own).
    // database "": the home's SQLite file the killed one wrote, under SPOOL_TEST_STORE=postgres too.
    const next = await startTestServer({ home, localRunner: false, database: "" });
    try {
      expect(lockOf(home)).toMatchObject({ pid: process.pid });
      const again = await SpoolClient.connect(next.server.url, { token: tokenOf(home) });
      await again.initialize("stale");
      expect((await again.call("run/get", { run: "survivor" })).run.alias).toBe("survivor");
      again.close();
    } finally {
      await next.stop();
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
    expect((await (await first.clientIn("same")).call("ping", {})).pong).toBe(true);
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
