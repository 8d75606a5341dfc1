import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { describeWithInfra, infra, sshRunnerFlags } from "../helpers/infra.js";
import { killMarked, marker, processesWith } from "../helpers/marked.js";
import { type RunnerProcess, spawnRunner } from "../helpers/process.js";
import { type ProposeOptions, proposeAndAccept } from "../helpers/proposals.js";
import { finished } from "../helpers/runners.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * SPEC §7 "Stopped means stopped": a `spool runner` killed alone (SIGKILL to its pid, not its group) takes its
 * commands with it — a counter loop and a daemon it left with `setsid` — and a runner that cannot promise that
 * says its producers may still be running, and kills them at its next start.
 */

// The server's wait for a lost runner to come back: these runners never do (killed), so it only delays the 499.
const GRACE_MS = 200;

/**
 * A counter loop marked by `MARK` (in its shell's command line), with a setsid daemon `sleep DAEMON` beside it. It
 * ignores SIGPIPE, so the runner's end (its pipes' reader) does not end it by itself.
 */
const counter = (mark: string, daemon: string | null) =>
  `${daemon ? `setsid sleep ${daemon} </dev/null >/dev/null 2>&1 & ` : ""}trap '' PIPE; i=0; while :; do i=$((i+1)); echo "${mark} $i"; sleep 0.05; done`;

let ts: TestServer;
let client: SpoolClient;
const runners: RunnerProcess[] = [];
const marks: string[] = [];
let count = 0;

beforeAll(async () => {
  ts = await startTestServer({ localRunner: false, runnerGraceMs: GRACE_MS });
});
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.stop("SIGKILL")));
  for (const m of marks.splice(0)) killMarked(m);
});
afterAll(async () => {
  await ts?.stop();
});

async function runner(project: string, flags: string[], name = `box-${++count}`, stateDir = join(tempDir(), "state"), env: NodeJS.ProcessEnv = {}) {
  const args = ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", project, "--name", name, "--state-dir", stateDir];
  // The project is made with its root first: a runner joins a project, it makes none (a name alone is NOT_FOUND).
  client = await ts.clientIn(project);
  const r = await spawnRunner([...args, "--kill-grace", "500", ...flags], env);
  runners.push(r);
  return { runner: r, name, stateDir };
}

/** Starts the counter (and its daemon) on runner `name`, and waits until it counts and the daemon runs on its own. */
async function startCounter(name: string, options: ProposeOptions, withDaemon = true) {
  const mark = `count-${marker()}`;
  const daemon = withDaemon ? marker() : null;
  marks.push(mark, ...(daemon ? [`sleep ${daemon}`] : []));
  const run = `r${++count}`;
  const paths = await proposeAndAccept(client, client, run, counter(mark, daemon), { ...options, runner: name });
  await eventually(async () => (await client.call("entry/get", { run, path: paths.stdout })).bytes > 0, 15_000, "the counter's output");
  if (daemon) await eventually(() => processesWith(`sleep ${daemon}`, true).length > 0, 10_000, "the daemon");
  return { run, paths, mark, daemon };
}

/** Every process of the counter (its shell, marked) and its daemon is gone. */
const allGone = (mark: string, daemon: string | null) => () => processesWith(mark).length === 0 && (!daemon || processesWith(`sleep ${daemon}`).length === 0);

describeWithBwrap("a runner killed alone takes its commands with it (local)", () => {
  for (const [what, flags, options] of [
    ["full mode, --contain auto (a cgroup where the runner may make one)", ["--backend", "local"], { sandbox: "full" }],
    ["full mode, a PID namespace per command", ["--backend", "local", "--contain", "pid-namespace"], { sandbox: "full" }],
    ["workspace-write (bubblewrap)", ["--backend", "local"], { sandbox: "workspace-write" }],
  ] as const) {
    it(`${what}: kill -9 of the runner ends the counter and its daemon; the channel says 499 runner lost`, async () => {
      const project = `death-${count}`;
      const { runner: r, name } = await runner(project, [...flags]);
      const { run, paths, mark, daemon } = await startCounter(name, options);
      expect(processesWith(mark).length).toBeGreaterThan(0);
      r.child.kill("SIGKILL");
      // Before: the counter went on counting under init, and the daemon with it.
      await eventually(allGone(mark, daemon), 10_000, "the counter and its daemon to die with the runner");
      const done = await finished(client, run, paths, 15_000);
      expect(done.stdout.status).toBe(ENTRY.cancelled);
      expect(done.stdout.attributes.reason).toBe("runner lost");
    }, 60_000);
  }

  it("--contain none: the runner says so at attach, its lost producers say they may still run, and its next start kills them", async () => {
    const project = `death-none-${count}`;
    const flags = ["--backend", "local", "--contain", "none"];
    const { runner: r, name, stateDir } = await runner(project, flags);
    expect(r.output()).toMatch(/Command container: none: no container for commands/);
    const listed = (await client.call("runner/list", {})).runners.find((x: { name: string }) => x.name === name);
    expect(listed?.container).toMatchObject({ kind: "none", diesWithRunner: false });
    const { run, paths, mark } = await startCounter(name, { sandbox: "full" }, false);
    r.child.kill("SIGKILL");
    const done = await finished(client, run, paths, 15_000);
    expect(done.stdout.attributes.reason).toBe("runner lost, may still be running");
    // It was true: nothing held the counter.
    expect(processesWith(mark).length).toBeGreaterThan(0);
    // The next runner on the same state directory kills it before it attaches, and says so.
    const { runner: next } = await runner(project, flags, `${name}-next`, stateDir, { SPOOL_LOG: "info" });
    expect(processesWith(mark)).toEqual([]);
    expect(next.output()).toMatch(/killing process group \d+ \(.*count-.*\), left running by runner process \d+/);
  }, 150_000);
});

it("--contain with an unknown value: the runner refuses to start, saying which values it takes", async () => {
  await expect(runner("death-bad", ["--backend", "local", "--contain", "cgroups-please"])).rejects.toThrow(
    /--contain must be auto, pid-namespace or none, got "cgroups-please"/,
  );
});

describeWithInfra("ssh", "a runner killed alone takes its commands with it (ssh: the remote host's PID namespace)", () => {
  for (const sandbox of ["full", "workspace-write"] as const) {
    it(`${sandbox}: kill -9 of the runner ends the remote counter and its daemon; the channel says 499 runner lost`, async () => {
      const project = `death-ssh-${sandbox}`;
      const { runner: r, name } = await runner(project, sshRunnerFlags());
      expect(r.output()).toMatch(/Command container: pid-namespace/);
      const { run, paths, mark, daemon } = await startCounter(name, { sandbox });
      r.child.kill("SIGKILL");
      // The sshd on 127.0.0.1 runs on this machine: its processes are seen here.
      await eventually(allGone(mark, daemon), 15_000, "the remote counter and its daemon to die with the runner's connection");
      const done = await finished(client, run, paths, 15_000);
      expect(done.stdout.attributes.reason).toBe("runner lost");
    }, 60_000);
  }
});

/** The containers of runner process `pid` (their `spool.runner.process` label), running or not. */
const containersOf = (pid: number) =>
  execFileSync("docker", ["ps", "-a", "--filter", "label=spool.runner.process", "--format", '{{.ID}} {{.Label "spool.runner.process"}}'], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.split(" ")[1]?.startsWith(`${pid}-`));

describeWithInfra("docker", "a runner killed alone takes its commands with it (docker --image: a watcher removes its containers)", () => {
  it("kill -9 of the runner removes the counter's container; the channel says 499 runner lost", async () => {
    const project = "death-docker";
    const { runner: r, name } = await runner(project, ["--backend", "docker", "--image", infra.dockerImage!]);
    expect(r.output()).toMatch(/Command container: pid-namespace/);
    const listed = (await client.call("runner/list", {})).runners.find((x: { name: string }) => x.name === name);
    expect(listed?.container).toMatchObject({ kind: "pid-namespace", diesWithRunner: true });
    const { run, paths, mark } = await startCounter(name, { sandbox: "full" }, false);
    expect(containersOf(r.child.pid!)).toHaveLength(1);
    r.child.kill("SIGKILL");
    // Before: the engine kept the container, and the counter in it, running.
    await eventually(() => containersOf(r.child.pid!).length === 0 && processesWith(mark).length === 0, 15_000, "the counter's container to be removed");
    const done = await finished(client, run, paths, 15_000);
    expect(done.stdout.attributes.reason).toBe("runner lost");
  }, 60_000);
});
