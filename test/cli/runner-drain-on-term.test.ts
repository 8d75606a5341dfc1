import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { type RunnerProcess, spawnRunner } from "../helpers/process.js";
import { ensureRun } from "../helpers/proposals.js";
import { finished } from "../helpers/runners.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

/*
 * `spool runner --drain-on-term` (a pod's runner, deploy/kubernetes/runner.yaml): SIGTERM drains it — the server
 * gives it nothing new, what it runs goes on to its end and is reported, then it exits 0; a second signal stops it at
 * once. Without the flag SIGTERM stops its commands at once (test/cli/runner.test.ts).
 */

describe("spool runner --drain-on-term", () => {
  let ts: TestServer;
  let admin: SpoolClient;
  const running: RunnerProcess[] = [];
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    admin = await ts.clientIn("drains");
  });
  afterAll(async () => {
    for (const r of running) if (r.child.exitCode === null) await r.stop("SIGKILL");
    await ts.stop();
  });

  const start = async (name: string, pool: string) => {
    const runner = await spawnRunner([
      ...["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "drains", "--name", name],
      ...["--backend", "local", "--label", `pool=${pool}`, "--capacity", "1", "--drain-on-term"],
    ]);
    running.push(runner);
    return runner;
  };

  /** A command for the pool that runs until a word is written into the FIFO `fifo` of the project root. */
  const waiting = async (run: string, pool: string, fifo: string) => {
    await ensureRun(admin, run);
    const command = `mkfifo ${fifo}; echo started; read word < ${fifo}; echo finished $word`;
    const { path } = await admin.call("proposal/create", { run, tool: "sh", command, runner: { labels: { pool } } });
    const resolved = await admin.call("run/resolve", { run, path, decision: "accept" });
    const [stdout, stderr] = resolved.channels.map((c) => c.path) as [string, string];
    await eventually(async () => (await admin.call("entry/get", { run, path: stdout })).body.includes("started"), 30_000, `${run} to start`);
    return { path, stdout, stderr, resolved };
  };

  const stateOf = async (name: string) => (await admin.call("runner/list", {})).runners.find((r) => r.name === name);

  it("SIGTERM: takes nothing new, lets the running command end and report it, then exits 0", async () => {
    const runner = await start("term-box", "a");
    const first = await waiting("first", "a", "go-a");
    runner.child.kill("SIGTERM");
    await eventually(() => runner.output().includes("Received SIGTERM, draining"), 15_000, "the runner to drain");
    await eventually(async () => (await stateOf("term-box"))?.state === "draining", 15_000, "runner/list to say draining");
    // Accepted now, it waits in the pool's queue: the draining runner does not take it.
    await ensureRun(admin, "second");
    const { path } = await admin.call("proposal/create", { run: "second", tool: "sh", command: "echo second", runner: { labels: { pool: "a" } } });
    expect((await admin.call("run/resolve", { run: "second", path, decision: "accept" })).runner).toBeNull();
    expect(runner.child.exitCode).toBeNull();
    expect((await admin.call("entry/get", { run: "first", path: first.stdout })).status).toBe(ENTRY.streaming);

    writeFileSync(join(ts.root, "go-a"), "now\n");
    const done = await finished(admin, "first", first);
    expect(done.out.toString()).toBe("started\nfinished now\n");
    expect(done.log.attributes).toMatchObject({ exit_code: 0 });
    expect(await runner.stop("SIGTERM")).toBe(0);
    expect(runner.output()).toContain("Drained: nothing runs, stopping the runner");
    expect((await admin.call("runner/queue", {})).queued).toMatchObject([{ run: "second", path }]);
    await admin.call("stream/cancel", { run: "second", path });
  });

  it("a second signal while draining stops at once: the command is killed and reported stopped", async () => {
    const runner = await start("twice-box", "b");
    const job = await waiting("twice", "b", "go-b");
    runner.child.kill("SIGTERM");
    await eventually(() => runner.output().includes("Received SIGTERM, draining"), 15_000, "the runner to drain");
    expect(await runner.stop("SIGINT")).toBe(0);
    expect(runner.output()).toContain("Received SIGINT while draining, stopping the runner and its 1 command(s)");
    const done = await finished(admin, "twice", job);
    expect(done.stdout.status).toBe(499);
    expect(done.log.attributes).toMatchObject({ outcome: "aborted", reason: "runner stopped", status: 499 });
  });
});
