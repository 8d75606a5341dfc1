import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import { ENTRY } from "../../src/protocol/status.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { bootId, type ProcessRecord, ProcessRegistry, reapLeftovers } from "../../src/runners/local/orphans.js";
import { cgroupMissing, privateCgroup, watcherOf } from "../helpers/marked.js";
import { type RunnerProcess, type ServeProcess, spawnRunner, spawnServe } from "../helpers/process.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

const linux = existsSync("/proc/self/stat") && existsSync("/proc/sys/kernel/random/boot_id");
/** Without a cgroup per command, a full command is in a PID namespace that dies with its runner: nothing is left for a restart. */
const noCgroup = linux ? await cgroupMissing() : null;
if (noCgroup) console.warn(`orphans.test.ts: ${noCgroup}; the spool serve restart test skips, the spool runner one uses --contain none`);
const silent = createLogger("silent");

/** /proc/<pid>/stat, read independently of the code under test: state, process group, start time. */
function stat(pid: number): { state: string; pgrp: number; startTime: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: f[0]!, pgrp: Number(f[2]), startTime: Number(f[19]) };
  } catch {
    return null;
  }
}

/** Pids of the running (not zombie) processes of group `pgid`. */
function groupMembers(pgid: number): number[] {
  return readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => {
      const s = stat(pid);
      return s !== null && s.pgrp === pgid && s.state !== "Z";
    });
}

/** Records files in a registry directory. */
const recordsIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith(".json")) : []);

describe.skipIf(!linux)("no orphans: process groups left by a runner that died are killed by its next incarnation", () => {
  const groups: number[] = [];
  const children: ChildProcess[] = [];
  const servers: ServeProcess[] = [];
  const runners: RunnerProcess[] = [];
  const testServers: TestServer[] = [];
  const clients: SpoolClient[] = [];
  const cgroups: { remove: () => Promise<void> }[] = [];

  /**
   * The `node` that starts a server or runner in a cgroup of this test's own (helpers/marked.ts): no other test's
   * start sweeps what the killed one left before its next incarnation can. Without cgroups, this Node.
   */
  const isolated = (): { node?: string; holds: (pid: number) => boolean } => {
    const cgroup = noCgroup ? null : privateCgroup(tempDir());
    if (!cgroup) return { holds: () => true };
    cgroups.push(cgroup);
    // Whether the process `pid` runs in that cgroup or below it (its line in /proc/PID/cgroup names it): a command
    // just started may not have moved into its own cgroup yet, and is then in its runner's, still inside.
    const inside = new RegExp(`${cgroup.dir.slice(cgroup.dir.indexOf("/spool-test-")).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(/|$)`, "m");
    return { node: cgroup.node, holds: (pid) => inside.test(readFileSync(`/proc/${pid}/cgroup`, "utf8")) };
  };

  afterEach(async () => {
    for (const c of clients.splice(0)) if (!c.closed) c.close();
    await Promise.all(runners.splice(0).map((r) => r.stop("SIGKILL")));
    await Promise.all(servers.splice(0).map((s) => s.stop("SIGKILL")));
    await Promise.all(testServers.splice(0).map((s) => s.stop()));
    for (const pgid of groups.splice(0)) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {}
    }
    for (const child of children.splice(0)) child.kill("SIGKILL");
    for (const cgroup of cgroups.splice(0)) await cgroup.remove();
  });

  /** A detached group led by `/bin/sh -c script`, as the local backend starts them, with its leader's start time. */
  function startGroup(script: string): { pgid: number; startTime: number } {
    const child = spawn("/bin/sh", ["-c", script], { detached: true, stdio: "ignore" });
    children.push(child);
    const pgid = child.pid!;
    groups.push(pgid);
    // Read at once: the child cannot have been reaped before this tick ends.
    return { pgid, startTime: stat(pgid)!.startTime };
  }

  /** Writes a record as a runner would have, with a dead owner unless told otherwise. */
  function record(dir: string, group: { pgid: number; startTime: number }, overrides: Partial<ProcessRecord> = {}): string {
    const self = stat(process.pid)!;
    const r: ProcessRecord = {
      version: 1,
      pgid: group.pgid,
      startTime: group.startTime,
      bootId: bootId()!,
      // This test's pid, but another start time: a runner whose pid was since reused counts as dead.
      owner: { pid: process.pid, startTime: self.startTime + 1 },
      command: "leftover",
      recordedAt: new Date().toISOString(),
      ...overrides,
    };
    const name = `${group.pgid}-${group.startTime}.json`;
    writeFileSync(join(dir, name), JSON.stringify(r));
    return name;
  }

  it("the local backend records each group while it runs and forgets it when it ends; a group outliving its leader keeps its record until it is empty", async () => {
    const dir = join(tempDir(), "processes");
    const registry = new ProcessRegistry(dir, silent, { lingerCheckMs: 50 });
    // No container: a group outlives its leader only where no cgroup or PID namespace ends it with the command.
    const backend = new LocalBackend({ processes: registry, container: "none" });
    const signal = new AbortController().signal;

    // Each command here runs until the test says (a file), not for a fixed time a busy machine can outrun.
    const flags = tempDir();
    const until = (name: string) => `while [ ! -e ${join(flags, name)} ]; do sleep 0.05; done`;
    const plainCommand = until("plain");
    const plain = await backend.start({ command: plainCommand, env: {}, signal });
    const pid = plain.describe().pid!;
    groups.push(pid);
    const [file] = recordsIn(dir);
    expect(file).toBe(`${pid}-${stat(pid)!.startTime}.json`);
    const saved = JSON.parse(readFileSync(join(dir, file!), "utf8")) as ProcessRecord;
    expect(saved).toMatchObject({ version: 1, pgid: pid, bootId: bootId(), owner: { pid: process.pid }, command: plainCommand });
    writeFileSync(join(flags, "plain"), "");
    plain.stdout.resume();
    plain.stderr.resume();
    expect((await plain.result).exitCode).toBe(0);
    expect(recordsIn(dir)).toEqual([]);

    // The leader exits at once; the background sleep stays in its group.
    const background = await backend.start({ command: `(${until("background")}) >/dev/null 2>&1 & echo started`, env: {}, signal });
    const leader = background.describe().pid!;
    groups.push(leader);
    background.stdout.resume();
    background.stderr.resume();
    expect((await background.result).exitCode).toBe(0);
    expect(groupMembers(leader).length).toBeGreaterThan(0);
    expect(recordsIn(dir)).toHaveLength(1);
    writeFileSync(join(flags, "background"), "");
    await eventually(() => recordsIn(dir).length === 0, 5_000, "the record to go with the group's last member");
    expect(groupMembers(leader)).toEqual([]);
    await backend.close();
  });

  it("commands ending leave /proc unread at their exit; a check reads it once for all groups still there, and forgets each group with its last member", async () => {
    const dir = join(tempDir(), "processes");
    const scans: number[] = [];
    const registry = new ProcessRegistry(dir, silent, { lingerCheckMs: 100, onProcScan: (n) => scans.push(n) });
    const backend = new LocalBackend({ processes: registry, container: "none" });
    const signal = new AbortController().signal;
    // Four leaders exit at once, each leaving a background member in its group, there until the test says (a file):
    // a member that slept a fixed time could be gone before a busy machine's first check.
    const done = join(tempDir(), "done");
    const member = `(while [ ! -e ${done} ]; do sleep 0.05; done) >/dev/null 2>&1 & echo started`;
    const runs = await Promise.all([0, 1, 2, 3].map(() => backend.start({ command: member, env: {}, signal })));
    const leaders = runs.map((r) => r.describe().pid!);
    groups.push(...leaders);
    for (const r of runs) {
      r.stdout.resume();
      r.stderr.resume();
    }
    await Promise.all(runs.map((r) => r.result));
    expect(recordsIn(dir)).toHaveLength(4);
    // A check scans /proc once for all four groups still there, none apart. (Leaders a busy machine lets exit
    // more than a check's interval apart can be in two checks; the next one has them all.)
    await eventually(() => scans.includes(4), 5_000, "a linger check of the four groups at once");
    expect(recordsIn(dir)).toHaveLength(4);
    writeFileSync(done, "");
    await eventually(() => recordsIn(dir).length === 0, 10_000, "the records to go with the groups' last members");
    for (const leader of leaders) expect(groupMembers(leader)).toEqual([]);
    expect(registry.recorded).toEqual([]);
    await backend.close();
  });

  it("reapLeftovers TERMs a dead runner's groups, KILLs those that ignore TERM after the grace, and removes their records", async () => {
    const dir = tempDir();
    const polite = startGroup("sleep 300");
    const stubborn = startGroup("trap '' TERM; sleep 300");
    // A group whose leader has exited: only a background member is left.
    const headless = startGroup("sleep 300 & exit 0");
    record(dir, polite);
    record(dir, stubborn);
    record(dir, headless);
    await eventually(() => stat(headless.pgid) === null || stat(headless.pgid)!.state === "Z", 5_000, "the headless group's leader to exit");
    for (const g of [polite, stubborn, headless]) expect(groupMembers(g.pgid).length).toBeGreaterThan(0);

    const started = Date.now();
    const result = await reapLeftovers(dir, silent, { killGraceMs: 500 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400); // the stubborn one needed the KILL
    expect(result.killed.map((r) => r.pgid).sort()).toEqual([polite.pgid, stubborn.pgid, headless.pgid].sort());
    await eventually(() => [polite, stubborn, headless].every((g) => groupMembers(g.pgid).length === 0), 5_000, "the groups to be gone");
    expect(recordsIn(dir)).toEqual([]);
  });

  it("reapLeftovers leaves alone a live runner's groups, a reused pid, records from another boot, and drops records of groups already gone", async () => {
    const dir = tempDir();
    const mine = startGroup("sleep 300");
    const reused = startGroup("sleep 300");
    const rebooted = startGroup("sleep 300");
    const self = stat(process.pid)!;
    const kept = record(dir, mine, { owner: { pid: process.pid, startTime: self.startTime } });
    record(dir, { pgid: reused.pgid, startTime: reused.startTime - 1 }); // the pid once belonged to an older process
    record(dir, rebooted, { bootId: "00000000-0000-0000-0000-000000000000" });
    const done = startGroup("exit 0");
    await eventually(() => groupMembers(done.pgid).length === 0, 5_000, "the short group to end");
    record(dir, done);
    writeFileSync(join(dir, "garbage.json"), "{not json");

    const result = await reapLeftovers(dir, silent, { killGraceMs: 200 });
    expect(result.killed).toEqual([]);
    expect(result.kept).toBe(1);
    expect(result.forgotten).toBe(4);
    expect(recordsIn(dir)).toEqual([kept]);
    for (const g of [mine, reused, rebooted]) expect(groupMembers(g.pgid)).toContain(g.pgid);
  });

  it("SIGKILL of `spool serve` while `sleep 300` runs on the embedded runner: the restarted server kills it before it listens, and the producer ends 499 interrupted", async ({
    skip,
  }) => {
    if (noCgroup) skip();
    const home = tempDir();
    const root = tempDir();
    const args = ["--port", "0", "--home", home];
    // Full: a sandboxed command would die with the server (bubblewrap's --die-with-parent) before any restart.
    const env = { SPOOL_RUNNER_GRACE_MS: "1000", SPOOL_SANDBOX: "full" };
    const { node, holds } = isolated();
    const first = await spawnServe(args, env, node);
    servers.push(first);
    const token = readFileSync(join(home, "token"), "utf8").trim();
    const client = await SpoolClient.connect(first.url, { token });
    clients.push(client);
    await client.initialize("orphans", { root });
    await client.call("run/create", { alias: "o" });
    const { path } = await client.call("proposal/create", { run: "o", tool: "sh", command: "sleep 300" });
    const { channels } = await client.call("run/resolve", { run: "o", path, decision: "accept" });
    let pid: number | undefined;
    await eventually(async () => Boolean((pid = (await client.request("entry/get", { run: "o", path })).attributes.process?.pid)), 10_000, "the pid");
    groups.push(pid!);
    // Out of every other start's sweep of dead runners' cgroups (isolated, above).
    expect(holds(pid!), "the command runs below the test's own cgroup").toBe(true);
    const processes = join(home, "processes");
    expect(recordsIn(processes)).toEqual([`${pid}-${stat(pid!)!.startTime}.json`]);

    // Its cgroup watcher killed first: the restart is what is left to kill the command.
    process.kill(watcherOf(first.child.pid!)!, "SIGKILL");
    await first.stop("SIGKILL");
    client.close();
    // Nothing stopped it: without the fix it would run on under init.
    expect(groupMembers(pid!).length).toBeGreaterThan(0);

    const second = await spawnServe(args, env, node);
    servers.push(second);
    expect(groupMembers(pid!)).toEqual([]);
    expect(recordsIn(processes)).toEqual([]);

    const after = await SpoolClient.connect(second.url, { token });
    clients.push(after);
    await after.initialize("orphans");
    await eventually(
      async () => (await after.call("entry/get", { run: "o", path: channels[0]!.path })).status === ENTRY.cancelled,
      10_000,
      "the producer to be reaped",
    );
    expect((await after.call("entry/get", { run: "o", path: channels[0]!.path })).attributes.reason).toBe("interrupted");
  }, 90_000);

  it("SIGKILL of `spool runner`: the next runner on the same --state-dir kills what the dead one left running", async () => {
    const ts = await startTestServer({ localRunner: false, sandbox: "full" });
    testServers.push(ts);
    const stateDir = join(tempDir(), "state");
    // The project is made with its root first: a runner joins a project, it makes none.
    const client = await ts.clientIn("orph");
    const base = ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "orph", "--backend", "local", "--state-dir", stateDir];
    if (noCgroup) base.push("--contain", "none");
    const { node, holds } = isolated();
    const first = await spawnRunner([...base, "--name", "box-1"], {}, node);
    runners.push(first);
    await client.call("run/create", { alias: "o" });
    const { path } = await client.call("proposal/create", { run: "o", tool: "sh", command: "sleep 300" });
    await client.call("run/resolve", { run: "o", path, decision: "accept", runner: "box-1" });
    let pid: number | undefined;
    await eventually(async () => Boolean((pid = (await client.request("entry/get", { run: "o", path })).attributes.process?.pid)), 10_000, "the pid");
    groups.push(pid!);
    // Out of every other start's sweep of dead runners' cgroups (isolated, above).
    expect(holds(pid!), "the command runs below the test's own cgroup").toBe(true);
    expect(recordsIn(stateDir)).toHaveLength(1);

    if (!noCgroup) process.kill(watcherOf(first.child.pid!)!, "SIGKILL");
    await first.stop("SIGKILL");
    expect(groupMembers(pid!).length).toBeGreaterThan(0);

    // Another name (the dead one's is held for its grace), the same state directory.
    const second = await spawnRunner([...base, "--name", "box-2"], {}, node);
    runners.push(second);
    expect(groupMembers(pid!)).toEqual([]);
    expect(recordsIn(stateDir)).toEqual([]);
  }, 60_000);
});
