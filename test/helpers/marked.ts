import { readdirSync, readFileSync } from "node:fs";
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
