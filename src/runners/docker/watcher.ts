import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { program, programArgs } from "../../program.js";
import { readProcStat } from "../proc.js";

/** The label of this runner process's fresh containers: `spool.runner.process=PID-STARTTIME` (a reused pid is another runner). */
export const RUNNER_PROCESS_LABEL = "spool.runner.process";
const ownId = `${process.pid}-${readProcStat("self")?.startTime ?? 0}`;

let watcher: ChildProcess | null = null;

/**
 * The labels a fresh container gets so that it dies with this runner process: the first call starts the watcher
 * (one per runner process, in a session of its own, holding a pipe only this process writes); a watcher that was
 * killed is started again by the next call.
 */
export function diesWithRunner(): Record<string, string> {
  if (!watcher) {
    const dockerode = createRequire(import.meta.url).resolve("dockerode");
    const child = spawn(
      process.execPath,
      [...programArgs(program(import.meta.url, "watcher-main", ["dockerode"])), dockerode, `${RUNNER_PROCESS_LABEL}=${ownId}`],
      {
        stdio: ["pipe", "ignore", "ignore"],
        detached: true,
        // Not the runner's own Node options (a loader, a preload): the watcher is plain JavaScript.
        env: { ...process.env, NODE_OPTIONS: "--max-old-space-size=16" },
      },
    );
    child.on("error", () => undefined);
    child.once("exit", () => {
      if (watcher === child) watcher = null;
    });
    child.stdin!.on("error", () => undefined);
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    watcher = child;
  }
  return { [RUNNER_PROCESS_LABEL]: ownId };
}
