import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { ContainerInfo } from "../../protocol/runner.js";
import { DEFAULT_PATH, localBaseEnvironment } from "../environment.js";
import { findProgram, pidNamespaceArgs, SANDBOX_SIGNALS } from "../sandbox/sandbox.js";

export { ContainerInfo } from "../../protocol/runner.js";

/**
 * A container of one command's processes that nothing inside can leave (SPEC §7 "Stopped means stopped"): a
 * daemon that made itself a session of its own (`setsid cmd &`) is still in it, and killing the container
 * kills everything the command started. The local backend uses, in order:
 *
 * - a cgroup v2 of its own per command, where the machine lets this process create cgroups under its own (root,
 *   or a delegated cgroup): the command joins it before it runs (a shell writes its pid to `cgroup.procs`, then
 *   `exec`s), and `cgroup.kill` ends it. One watcher process per runner process, in a session of its own,
 *   holds a pipe from the runner and kills every command's cgroup when the pipe closes (the runner ended, however);
 * - else a PID namespace of its own (bubblewrap with `--unshare-pid` and the host's whole filesystem bound
 *   through, nothing else restricted; sandboxed modes have one anyway): when the command's own process ends,
 *   the kernel kills the rest, and `--die-with-parent` ends it with the runner;
 * - else nothing: a daemonised process escapes cancel, and a runner's death leaves its commands running.
 */
export type Containment =
  | { kind: "cgroup"; info: ContainerInfo; open(): CommandCgroup }
  | { kind: "pid-namespace"; info: ContainerInfo; bwrap: string; resetSignals: string | null }
  | { kind: "none"; info: ContainerInfo };

/** One command's cgroup. */
export interface CommandCgroup {
  /** Its directory under the cgroup2 mount (recorded, so a restart can kill it). */
  readonly path: string;
  /** The program and arguments that start `file args` inside it: a shell that joins the cgroup, then `exec`s it. */
  wrap(file: string, args: string[]): { file: string; args: string[] };
  /** Sends `signal` to every process in it but those of process group `except` (signalled as a group already): a cancel's TERM reaches a daemon that left the group too. */
  signal(signal: NodeJS.Signals, except: number): void;
  /** Kills every process in it, waits (up to `waitMs`) until it is empty and removes it. Twice is harmless. */
  kill(waitMs?: number): Promise<void>;
}

/** The shell that joins a cgroup ($0 names its cgroup.procs) and becomes the command. */
const JOIN = 'echo $$ > "$0" || exit 126; exec "$@"';

let mountPoint: string | null | undefined;

/** Where the cgroup v2 hierarchy is mounted (hybrid machines mount it at /sys/fs/cgroup/unified); null when it is not. Read once. */
function cgroup2Mount(): string | null {
  if (mountPoint === undefined) mountPoint = readCgroup2Mount();
  return mountPoint;
}

function readCgroup2Mount(): string | null {
  let text: string;
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const [before, after] = line.split(" - ");
    if (!after?.startsWith("cgroup2 ")) continue;
    const fields = before!.split(" ");
    // Field 4 is the mount's root inside the hierarchy: only a mount of the whole hierarchy (or of our own namespace's) is usable.
    if (fields[3] === "/") return fields[4]!.replace(/\\040/g, " ");
  }
  return null;
}

/** This process's cgroup v2 path ("0::/path" in /proc/self/cgroup); null when it has none. */
function ownCgroup(): string | null {
  try {
    const line = readFileSync("/proc/self/cgroup", "utf8")
      .split("\n")
      .find((l) => l.startsWith("0::"));
    return line ? line.slice(3) : null;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether the cgroup at `dir` still holds a process (its `cgroup.events` says `populated 1`); false once it is gone. */
function populated(dir: string): boolean {
  try {
    return /^populated 1$/m.test(readFileSync(join(dir, "cgroup.events"), "utf8"));
  } catch {
    return false;
  }
}

/** The name of a runner process's cgroup directory: `spool-PID-STARTTIME`, so a reused pid is never taken for the owner. */
const RUNNER_DIR = /^spool-(\d+)-(\d+)$/;

/**
 * Kills the cgroup at `dir` (its descendants with it), waits up to `waitMs` until it is empty, and removes it (with
 * `parent`, also the runner's directory above it when that is left empty). Whether anything was running in it. Only a directory
 * under the cgroup2 mount, inside a runner's directory, is touched: a record cannot make it kill another cgroup.
 */
export async function killCgroup(dir: string, waitMs = 2000, options: { parent?: boolean } = {}): Promise<boolean> {
  const mount = cgroup2Mount();
  if (!mount || !dir.startsWith(`${mount}/`) || dir.includes("/../") || !RUNNER_DIR.test(basename(dirname(dir)))) return false;
  if (!existsSync(dir)) return false;
  const wasRunning = populated(dir);
  if (wasRunning) {
    try {
      writeFileSync(join(dir, "cgroup.kill"), "1");
    } catch {}
    const deadline = Date.now() + waitMs;
    while (populated(dir) && Date.now() < deadline) await sleep(10);
  }
  for (const path of options.parent ? [dir, dirname(dir)] : [dir]) {
    try {
      rmdirSync(path);
    } catch {
      break; // still populated, or (the parent) other commands' cgroups in it
    }
  }
  return wasRunning;
}

/** How a local backend contains its commands: `auto` the best this machine gives; the others (tests, and machines where a cgroup is unwanted) skip the cgroup, or everything. */
export type ContainerChoice = "auto" | "pid-namespace" | "none";

const probed = new Map<ContainerChoice, Promise<Containment>>();

/**
 * How this process contains its commands, probed once for the process (every local backend in it shares the
 * answer, the cgroup directory and the watcher). `environ` gives the PATH where bwrap is looked for.
 */
export function containment(environ: NodeJS.ProcessEnv = process.env, choice: ContainerChoice = "auto"): Promise<Containment> {
  let answer = probed.get(choice);
  if (!answer) probed.set(choice, (answer = probeContainment(environ, choice)));
  return answer;
}

/** The process's cgroup directory and its watcher, made by the first command (none made before one runs). */
let runnerCgroup: { dir: string; watcher: ChildProcess | null } | null = null;
let commandCount = 0;

async function probeContainment(environ: NodeJS.ProcessEnv, choice: ContainerChoice): Promise<Containment> {
  if (choice === "none")
    return { kind: "none", info: { kind: "none", diesWithRunner: false, detail: "no container for commands: turned off for this runner" } };
  const cgroup = choice === "auto" ? probeCgroup() : { why: "skipped for this runner" };
  if (typeof cgroup === "string") {
    const base = cgroup;
    await sweepDeadRunners(base);
    return {
      kind: "cgroup",
      info: {
        kind: "cgroup",
        diesWithRunner: true,
        detail: `a cgroup v2 per command under ${base}, killed on cancel, timeout and the command's end; a watcher kills them when the runner process ends`,
      },
      open: () => openCommandCgroup(base),
    };
  }
  const pidns = await probePidNamespace(environ);
  if (pidns.bwrap) {
    return {
      kind: "pid-namespace",
      bwrap: pidns.bwrap,
      resetSignals: pidns.resetSignals,
      info: {
        kind: "pid-namespace",
        diesWithRunner: true,
        detail: `no cgroup to create here (${cgroup.why}): every command in a PID namespace of its own (bubblewrap, --die-with-parent), whose processes die with the command, its cancel and the runner`,
      },
    };
  }
  return {
    kind: "none",
    info: {
      kind: "none",
      diesWithRunner: false,
      detail: `no container for commands: no cgroup to create (${cgroup.why}) and no PID namespace (${pidns.why}); a process that leaves the command's process group escapes a cancel, and a runner that is killed leaves its commands running until its next start`,
    },
  };
}

/**
 * Kills and removes the cgroup directories under `base` of runner processes that are gone (`spool-PID-START` whose
 * PID no longer runs with that start time): their watcher was killed with them, and no record named them.
 */
async function sweepDeadRunners(base: string): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const owner = RUNNER_DIR.exec(name);
    if (!owner || startTimeOf(Number(owner[1])) === Number(owner[2])) continue;
    const dir = join(base, name);
    let commands: string[] = [];
    try {
      commands = readdirSync(dir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name);
    } catch {}
    for (const command of commands) await killCgroup(join(dir, command));
    try {
      rmdirSync(dir);
    } catch {}
  }
}

/** The directory under which this process may create cgroups and kill them (its own cgroup), or why not. */
function probeCgroup(): string | { why: string } {
  const mount = cgroup2Mount();
  if (!mount) return { why: "no cgroup2 file system mounted" };
  const own = ownCgroup();
  if (own === null) return { why: "this process has no cgroup v2" };
  const base = join(mount, own);
  if (!existsSync(join(base, "cgroup.procs"))) return { why: `${base} is not this process's cgroup (another cgroup namespace?)` };
  const probe = join(base, `spool-probe-${process.pid}`);
  try {
    mkdirSync(probe);
  } catch (error) {
    return { why: `cannot create a cgroup in ${base} (${(error as NodeJS.ErrnoException).code ?? String(error)}): not delegated to this user` };
  }
  try {
    if (!existsSync(join(probe, "cgroup.kill"))) return { why: "the kernel has no cgroup.kill (before Linux 5.14)" };
    // Moving a process needs write access to the common ancestor's cgroup.procs (ours): try it with our own pid and back.
    try {
      writeFileSync(join(probe, "cgroup.procs"), String(process.pid));
      writeFileSync(join(base, "cgroup.procs"), String(process.pid));
    } catch (error) {
      return { why: `cannot move a process into a cgroup under ${base} (${(error as NodeJS.ErrnoException).code ?? String(error)})` };
    }
    return base;
  } finally {
    try {
      rmdirSync(probe);
    } catch {}
  }
}

/** bubblewrap, and whether it can make a PID namespace with the whole filesystem bound through (the containment's probe). */
function probePidNamespace(environ: NodeJS.ProcessEnv): Promise<{ bwrap: string | null; resetSignals: string | null; why: string }> {
  const bwrap = findProgram("bwrap", environ.PATH || DEFAULT_PATH);
  if (!bwrap) return Promise.resolve({ bwrap: null, resetSignals: null, why: "bubblewrap is not installed" });
  const env = findProgram("env", environ.PATH || DEFAULT_PATH);
  return new Promise((done) =>
    execFile(
      bwrap,
      pidNamespaceArgs({ env: {}, cwd: "/", command: "true" }),
      { env: localBaseEnvironment(environ), timeout: 10_000 },
      (error, _out, stderr) => {
        if (error)
          return done({ bwrap: null, resetSignals: null, why: `bubblewrap cannot make one: ${String(stderr).trim().split("\n")[0] || error.message}` });
        if (!env) return done({ bwrap, resetSignals: null, why: "" });
        execFile(env, [`--default-signal=${SANDBOX_SIGNALS.join(",")}`, "/bin/sh", "-c", "true"], { env: {}, timeout: 10_000 }, (failed) =>
          done({ bwrap, resetSignals: failed ? null : env, why: "" }),
        );
      },
    ),
  );
}

/** A new cgroup for one command, in this process's directory (made, with its watcher, by the first command). */
function openCommandCgroup(base: string): CommandCgroup {
  const runner = ensureRunnerCgroup(base);
  // A cgroup of its own, never one another command has (made afresh: EEXIST moves on to the next name).
  let path = join(runner, `command-${++commandCount}`);
  for (;;) {
    try {
      mkdirSync(path);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      path = join(runner, `command-${++commandCount}`);
    }
  }
  let killed: Promise<void> | null = null;
  return {
    path,
    wrap: (file, args) => ({ file: "/bin/sh", args: ["-c", JOIN, join(path, "cgroup.procs"), file, ...args] }),
    signal(signal, except) {
      let pids: string[];
      try {
        pids = readFileSync(join(path, "cgroup.procs"), "utf8").split("\n").filter(Boolean);
      } catch {
        return;
      }
      for (const pid of pids) {
        if (processGroup(Number(pid)) === except) continue;
        try {
          process.kill(Number(pid), signal);
        } catch {}
      }
    },
    kill: (waitMs) => (killed ??= killCgroup(path, waitMs).then(() => undefined)),
  };
}

/**
 * This process's cgroup directory, `spool-PID-STARTTIME` under its own cgroup, and the watcher: `/bin/sh` in a
 * session of its own (a signal to the runner's group does not reach it) reading a pipe only this process
 * writes (no command inherits it: Node opens pipes close-on-exec). The pipe closes when this process ends, by
 * any means; the watcher then kills every command's cgroup and removes them.
 */
function ensureRunnerCgroup(base: string): string {
  if (runnerCgroup?.watcher) return runnerCgroup.dir;
  // The first command, or the watcher was killed: (again) one for the directory, which keeps its commands' cgroups.
  const dir = runnerCgroup?.dir ?? join(base, `spool-${process.pid}-${ownStartTime()}`);
  mkdirSync(dir, { recursive: true });
  const script = [
    "read -r _",
    'echo 1 > "$0/cgroup.kill"',
    "i=0",
    'while grep -q "^populated 1" "$0/cgroup.events" && [ $i -lt 200 ]; do sleep 0.02; i=$((i+1)); done',
    'for d in "$0"/*/; do rmdir "$d"; done',
    'rmdir "$0"',
  ].join("\n");
  const watcher = spawn("/bin/sh", ["-c", script, dir], { stdio: ["pipe", "ignore", "ignore"], detached: true, env: { PATH: DEFAULT_PATH } });
  watcher.on("error", () => undefined);
  watcher.once("exit", () => {
    if (runnerCgroup?.watcher === watcher) runnerCgroup.watcher = null;
  });
  watcher.stdin!.on("error", () => undefined);
  watcher.unref();
  (watcher.stdin as unknown as { unref?: () => void }).unref?.();
  runnerCgroup = { dir, watcher };
  return dir;
}

/** The process group of `pid` (/proc/PID/stat field 5); null when it is gone. */
function processGroup(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[2]);
  } catch {
    return null;
  }
}

/** This process's start time in ticks since boot (/proc/self/stat field 22; orphans.ts reads it the same way), 0 when unknown. */
function ownStartTime(): number {
  return startTimeOf("self") ?? 0;
}

/** When process `pid` started (ticks since boot); null when it is gone or a zombie. */
function startTimeOf(pid: number | "self"): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" ? null : Number(fields[19]) || null;
  } catch {
    return null;
  }
}
