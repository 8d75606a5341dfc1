import { readFileSync } from "node:fs";

/*
 * How long the kernel kept a process's main thread (its event loop) ready to run but off every CPU: the second field
 * of /proc/<pid>/schedstat, the run queue's wait, in nanoseconds since the thread started. A latency a product
 * promises ("within 2 s") is the process's own time; on a machine whose cores are saturated the scheduler adds its
 * queue on top, and a test that checks the promise adds back what it measured here, so a quiet machine is held to
 * the promise exactly and a saturated one to the promise plus what the machine withheld. Not Linux, or no such
 * process: 0, and the promise is checked as it is.
 */

/** The run queue wait of `pid`'s main thread so far, in ms (0 where /proc does not say). */
export function runQueueWaitMs(pid: number | undefined = process.pid): number {
  if (pid === undefined) return 0;
  try {
    const [, waited] = readFileSync(`/proc/${pid}/schedstat`, "utf8").trim().split(/\s+/);
    const ns = Number(waited);
    return Number.isFinite(ns) ? ns / 1e6 : 0;
  } catch {
    return 0;
  }
}

/** Starts counting the run queue wait of these processes' main threads; `waited()` is what they waited since, in ms. */
export function countRunQueueWait(pids: readonly (number | undefined)[]): { waited(): number } {
  const start = pids.map((pid) => runQueueWaitMs(pid));
  return { waited: () => pids.reduce<number>((sum, pid, i) => sum + Math.max(0, runQueueWaitMs(pid) - start[i]!), 0) };
}
