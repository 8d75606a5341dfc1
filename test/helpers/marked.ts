import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { containment } from "../../src/runners/local/container.js";

/**
 * A unique `sleep` duration to mark a test's processes (`sleep 3011.4821` is nobody else's): found again by
 * scanning /proc, as `pgrep -f` would, without trusting the code under test.
 */
export function marker(base = 3011): string {
  return `${base}.${String(Math.floor(Math.random() * 1e6)).padStart(6, "0")}`;
}

/** Pids of the live (not zombie) processes whose command line contains `text` (its NULs read as spaces); with `exactly`, is it. */
export function processesWith(text: string, exactly = false): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      const line = readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      if (exactly ? line === text : line.includes(text)) found.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** Kills what a test left running (after a failure), by its marker. */
export function killMarked(text: string): void {
  for (const pid of processesWith(text)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
}

/**
 * The cgroup watcher of runner process `pid` (runners/local/container.ts: a shell in a session of its own whose argument is the
 * runner's cgroup directory `…/spool-PID-START`), or null when it has none.
 */
export function watcherOf(pid: number): number | null {
  return processesWith(`/spool-${pid}-`)[0] ?? null;
}

/**
 * Why runners started by this test process's user get no cgroup per command here (no cgroup2, no delegation: they
 * use a PID namespace instead), printed once by the caller; null when they do (root, or a delegated cgroup).
 */
export async function cgroupMissing(): Promise<string | null> {
  const box = await containment();
  return box.kind === "cgroup" ? null : `no cgroup per command for this user here: ${box.info.detail}`;
}

/**
 * A cgroup of the test's own, under this process's, and a `node` (for spawnServe and spawnRunner) that starts the
 * `spool` process in it. Every local runner and server on the machine sweeps the cgroups of dead runners under its
 * own cgroup when it starts (runners/local/container.ts `sweepDeadRunners`): a test that kills a runner and then
 * looks for the commands it left would race every other test's start. A runner started here keeps its commands
 * below this directory, where no other sweep looks. Null when this process has no cgroup v2 (the caller skips).
 */
export function privateCgroup(scratch: string): { node: string; dir: string; remove: () => Promise<void> } | null {
  const mount = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" "))
    .find((fields) => fields[fields.indexOf("-") + 1] === "cgroup2")?.[4];
  const own = readFileSync("/proc/self/cgroup", "utf8")
    .split("\n")
    .find((line) => line.startsWith("0::"))
    ?.slice(3);
  if (!mount || own === undefined) return null;
  // Not a runner's name (spool-PID-START): no sweep takes it for a dead runner's.
  const dir = join(mount, own, `spool-test-${process.pid}-${String(Math.floor(Math.random() * 1e6))}`);
  mkdirSync(dir);
  const node = join(scratch, "node-in-cgroup");
  writeFileSync(node, `#!/bin/sh\necho $$ > '${dir}/cgroup.procs' || exit 125\nexec '${process.execPath}' "$@"\n`, { mode: 0o755 });
  const remove = async () => {
    const below = (path: string): string[] => {
      try {
        return readdirSync(path, { withFileTypes: true })
          .filter((entry) => entry.isDirectory())
          .flatMap((entry) => [...below(join(path, entry.name)), join(path, entry.name)]);
      } catch {
        return [];
      }
    };
    try {
      writeFileSync(join(dir, "cgroup.kill"), "1");
    } catch {}
    // A killed cgroup empties once its processes have died (cgroup.events says `populated 0`); a directory is removed then.
    const deadline = Date.now() + 5_000;
    const populated = () => {
      try {
        return /^populated 1$/m.test(readFileSync(join(dir, "cgroup.events"), "utf8"));
      } catch {
        return false;
      }
    };
    while (populated() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const path of [...below(dir), dir]) {
      try {
        rmdirSync(path);
      } catch {}
    }
  };
  return { node, dir, remove };
}
