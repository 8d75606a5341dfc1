import { spawn } from "node:child_process";
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterEach, expect, it } from "vitest";
import type { ExecSpec } from "../../src/runners/backend.js";
import { type ContainerChoice, containment, killCgroup } from "../../src/runners/local/container.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { SshBackend } from "../../src/runners/ssh/ssh.js";
import { describeWithInfra, infra, sshHostKeys, sshKey } from "../helpers/infra.js";
import { cgroupMissing, killMarked, marker, processesWith, watcherOf } from "../helpers/marked.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { eventually, tempDir } from "../helpers/server.js";

/**
 * SPEC §7 "Stopped means stopped": a command's processes are in a container it cannot leave (a cgroup v2, else a
 * PID namespace), killed on cancel, timeout and the command's end; a daemon that made itself a session of its own
 * (`setsid`) goes too, in `full` mode as in the sandboxed ones.
 */

const drain = (stream: Readable) => void stream.resume();

/** Why the cgroup tests skip (this user may not create cgroups here); they run as root or with a delegated cgroup. */
const noCgroup = await cgroupMissing();
if (noCgroup) console.warn(`skipping the cgroup tests of stopped.test.ts: ${noCgroup}`);

/** `setsid sleep DAEMON` detached from everything, then `sleep MAIN` in the command's own group. */
const daemonised = (daemon: string, main: string) => `setsid sleep ${daemon} </dev/null >/dev/null 2>&1 & sleep ${main}`;

/**
 * The timeout of the timeout tests, counted from the start's return: the daemon is seen running (what the test waits
 * for before the timeout kills it) within 80 ms of that on a machine with both cores busy, locally as over SSH.
 */
const TIMEOUT_MS = 750;

const marks: string[] = [];
const mark = () => {
  const m = marker();
  marks.push(m);
  return m;
};
afterEach(() => {
  for (const m of marks.splice(0)) killMarked(`sleep ${m}`);
});

/** Starts `command` on a fresh local backend and waits until the daemon `daemon` runs. */
async function startWithDaemon(container: ContainerChoice, spec: Partial<ExecSpec> & { command: string }, daemon: string, controller = new AbortController()) {
  const backend = new LocalBackend({ container, killGraceMs: 500 });
  const execution = await backend.start({ env: {}, signal: controller.signal, ...spec });
  drain(execution.stdout);
  // What the command said and how it ended, if it did: told when the daemon never shows (ciG, Node 22, busy: 10 s
  // without it, cause unknown).
  let stderr = "";
  execution.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  let ended = "";
  execution.result.then(
    (result) => (ended = JSON.stringify(result)),
    (error: Error) => (ended = `failed: ${error.message}`),
  );
  // `setsid` has become the sleep (its own session, out of the command's group) once the command line is sleep's alone.
  await eventually(
    () => processesWith(`sleep ${daemon}`, true).length > 0,
    10_000,
    () => `sleep ${daemon} to run (the command ${ended ? `ended: ${ended}` : "still runs"}; its stderr: ${JSON.stringify(stderr)})`,
  );
  return { backend, execution, controller };
}

describeWithBwrap("stopped means stopped: a command's daemons die with its cancel, timeout and end", () => {
  it.skipIf(noCgroup !== null)("the machine gives this runner a cgroup it may kill (root here), reported as the runner's container", async () => {
    const box = await containment();
    expect(box.kind).toBe("cgroup");
    expect(await new LocalBackend().container()).toMatchObject({ kind: "cgroup", diesWithRunner: true });
    expect(await new LocalBackend({ container: "pid-namespace" }).container()).toMatchObject({ kind: "pid-namespace", diesWithRunner: true });
    expect(await new LocalBackend({ container: "none" }).container()).toMatchObject({ kind: "none", diesWithRunner: false });
  });

  for (const container of ["auto", "pid-namespace"] as const) {
    const where = container === "auto" ? (noCgroup ? "auto (a PID namespace here)" : "a cgroup") : "a PID namespace";
    it(`full mode, ${where}: a cancel kills the setsid daemon too`, async () => {
      const daemon = mark();
      const { execution, controller } = await startWithDaemon(container, { command: daemonised(daemon, mark()) }, daemon);
      controller.abort();
      const result = await execution.result;
      expect(result.cancelled).toBe(true);
      // Before: the daemon ran on under init, nothing left to kill it.
      expect(processesWith(`sleep ${daemon}`)).toEqual([]);
    });

    it(`full mode, ${where}: a timeout kills the setsid daemon too`, async () => {
      const daemon = mark();
      const { execution } = await startWithDaemon(container, { command: daemonised(daemon, mark()), timeoutMs: TIMEOUT_MS }, daemon);
      const result = await execution.result;
      expect(result.timedOut).toBe(true);
      expect(processesWith(`sleep ${daemon}`)).toEqual([]);
    });

    it(`full mode, ${where}: what a command left running ends with it (as in a sandbox's PID namespace)`, async () => {
      const daemon = mark();
      // The command ends once the test has seen its daemon run (a file), not after a fixed time a busy machine can
      // outrun: with `sleep 0.5` the daemon could come and go between two looks.
      const seen = join(tempDir("spool-stopped-"), "seen");
      const { execution } = await startWithDaemon(
        container,
        { command: `setsid sleep ${daemon} </dev/null >/dev/null 2>&1 & echo started; while [ ! -e ${seen} ]; do sleep 0.05; done` },
        daemon,
      );
      writeFileSync(seen, "");
      const result = await execution.result;
      expect(result.exitCode).toBe(0);
      expect(processesWith(`sleep ${daemon}`)).toEqual([]);
    });

    it(`full mode under a terminal, ${where}: a cancel kills the setsid daemon too`, async () => {
      const daemon = mark();
      const { execution, controller } = await startWithDaemon(container, { command: daemonised(daemon, mark()), tty: { cols: 80, rows: 24 } }, daemon);
      controller.abort();
      const result = await execution.result;
      expect(result.cancelled).toBe(true);
      expect(processesWith(`sleep ${daemon}`)).toEqual([]);
    });
  }

  it("full mode in a PID namespace: the result comes once the namespace is empty, under a terminal or not (bwrap outside exits before its init)", async () => {
    // bwrap outside exits with the command's own process; the namespace's init, and the daemons with it, go only
    // after that (--die-with-parent). Before: a result told while they were still dying, a few runs in a hundred (each
    // run here leaves several daemons, whose teardown takes longer, so more of them).
    for (let i = 0; i < 10; i++) {
      for (const tty of [undefined, { cols: 80, rows: 24 }]) {
        const daemon = mark();
        const command = `for i in 1 2 3 4 5 6 7 8; do setsid sleep ${daemon} </dev/null >/dev/null 2>&1 & done; sleep ${mark()}`;
        const { execution, controller } = await startWithDaemon("pid-namespace", { command, ...(tty ? { tty } : {}) }, daemon);
        await eventually(() => processesWith(`sleep ${daemon}`, true).length === 8, 10_000, `8 daemons ${daemon} to run`);
        controller.abort();
        expect((await execution.result).cancelled).toBe(true);
        expect(processesWith(`sleep ${daemon}`), `run ${i}${tty ? " under a terminal" : ""}`).toEqual([]);
      }
    }
  });

  it.skipIf(noCgroup !== null)("a watcher killed while the runner lives is replaced by the next command's start", async () => {
    const backend = new LocalBackend();
    const run = async () => {
      const execution = await backend.start({ command: "true", env: {}, signal: new AbortController().signal });
      drain(execution.stdout);
      drain(execution.stderr);
      await execution.result;
    };
    await run();
    const first = watcherOf(process.pid);
    expect(first).not.toBeNull();
    process.kill(first!, "SIGKILL");
    // Reaped (not only dead): this process has heard of its end.
    await eventually(() => !existsSync(`/proc/${first}`), 5_000, "the watcher to be reaped");
    await run();
    const second = watcherOf(process.pid);
    expect(second).not.toBeNull();
    expect(second).not.toBe(first);
  });

  it.skipIf(noCgroup !== null)(
    "a record cannot make the runner kill another cgroup: only a command's cgroup inside a runner's directory is killed",
    async () => {
      const box = await containment();
      if (box.kind !== "cgroup") throw new Error("needs the cgroup this machine gives (root)");
      // This process's own cgroup directory, where the runner makes its own: a sibling there is someone else's.
      const dir = box.info.detail.match(/under (\S+),/)![1]!;
      const other = join(dir, `not-spool-${process.pid}`);
      mkdirSync(other);
      const daemon = mark();
      const child = spawn("/bin/sh", ["-c", 'echo $$ > "$0/cgroup.procs" && exec sleep "$1"', other, daemon], { stdio: "ignore", detached: true });
      try {
        await eventually(() => processesWith(`sleep ${daemon}`, true).length > 0, 10_000, "the sleep in the other cgroup");
        expect(await killCgroup(other)).toBe(false);
        expect(await killCgroup(`${dir}/spool-1-1/../not-spool-${process.pid}`)).toBe(false);
        expect(processesWith(`sleep ${daemon}`, true)).toHaveLength(1);
      } finally {
        child.kill("SIGKILL");
        await eventually(() => processesWith(`sleep ${daemon}`).length === 0, 5_000, "the sleep to go");
        await eventually(
          () => {
            try {
              rmdirSync(other);
              return true;
            } catch {
              return false;
            }
          },
          5_000,
          "the other cgroup to be removed",
        );
      }
    },
  );

  it("full mode in a PID namespace: the command's exit code, a signal's end and its environment come through as without one", async () => {
    const backend = new LocalBackend({ container: "pid-namespace" });
    const run = async (command: string) => {
      const execution = await backend.start({ command, env: { MARK: "m1" }, cwd: tempDir(), signal: new AbortController().signal });
      const out: Buffer[] = [];
      execution.stdout.on("data", (chunk: Buffer) => out.push(chunk));
      drain(execution.stderr);
      return { result: await execution.result, stdout: Buffer.concat(out).toString() };
    };
    expect((await run("exit 7")).result).toMatchObject({ exitCode: 7, signal: null });
    expect((await run("kill -TERM $$")).result).toMatchObject({ exitCode: null, signal: "SIGTERM" });
    const { stdout } = await run('echo "$MARK $(id -u) $$"; touch made-here && echo wrote');
    // Its own PID namespace (the shell is pid 2 under bwrap's init), the runner's user, a writable directory.
    expect(stdout).toBe(`m1 ${process.getuid?.()} 2\nwrote\n`);
  });

  it("workspace-write: a cancel kills the setsid daemon (the sandbox's PID namespace, and its cgroup)", async () => {
    const daemon = mark();
    const root = tempDir();
    const { execution, controller } = await startWithDaemon(
      "auto",
      { command: daemonised(daemon, mark()), sandbox: { mode: "workspace-write" }, cwd: root, workspace: root },
      daemon,
    );
    controller.abort();
    expect((await execution.result).cancelled).toBe(true);
    expect(processesWith(`sleep ${daemon}`)).toEqual([]);
  });
});

describeWithInfra("ssh", "stopped means stopped on an SSH host: a full command's daemons die with its cancel and timeout", () => {
  const ssh = () =>
    new SshBackend({
      host: infra.ssh!.host,
      port: infra.ssh!.port,
      username: infra.ssh!.username,
      privateKey: sshKey(),
      hostKeys: sshHostKeys(),
      killGraceMs: 500,
    });

  it("the runner's facts: a PID namespace on the remote host (bwrap there), no cgroup", async () => {
    const backend = ssh();
    expect(await backend.container()).toMatchObject({ kind: "pid-namespace", diesWithRunner: true, detail: expect.stringMatching(/cgroups are not used/) });
    await backend.close();
  });

  for (const [what, extra] of [
    ["a cancel", {}],
    ["a timeout", { timeoutMs: TIMEOUT_MS }],
    ["a cancel under a terminal", { tty: { cols: 80, rows: 24 } }],
  ] as const) {
    it(`full mode: ${what} kills the setsid daemon too`, async () => {
      const backend = ssh();
      const daemon = mark();
      const controller = new AbortController();
      const execution = await backend.start({ command: daemonised(daemon, mark()), env: {}, signal: controller.signal, ...extra });
      drain(execution.stdout);
      drain(execution.stderr);
      // The sshd on 127.0.0.1 runs on this machine: the remote processes are seen here.
      await eventually(() => processesWith(`sleep ${daemon}`, true).length > 0, 10_000, `sleep ${daemon} to run`);
      if (!("timeoutMs" in extra)) controller.abort();
      const result = await execution.result;
      expect("timeoutMs" in extra ? result.timedOut : result.cancelled).toBe(true);
      await eventually(() => processesWith(`sleep ${daemon}`).length === 0, 5_000, "the daemon to be gone");
      await backend.close();
    });
  }

  it("full mode in the remote PID namespace: exit code, a signal's end and the environment come through as without one", async () => {
    const backend = ssh();
    const run = async (command: string) => {
      const execution = await backend.start({ command, env: { MARK: "m1" }, signal: new AbortController().signal });
      const out: Buffer[] = [];
      execution.stdout.on("data", (chunk: Buffer) => out.push(chunk));
      drain(execution.stderr);
      return { result: await execution.result, stdout: Buffer.concat(out).toString() };
    };
    expect((await run("exit 7")).result).toMatchObject({ exitCode: 7, signal: null });
    expect((await run("kill -TERM $$")).result).toMatchObject({ exitCode: null, signal: "SIGTERM" });
    expect((await run('echo "$MARK $$"')).stdout).toBe("m1 2\n");
    await backend.close();
  });
});
