import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { readProcStat } from "./orphans.js";

/**
 * The watcher's program: when its stdin ends (the runner process that holds the pipe ended, by SIGKILL too), it
 * removes every container labelled with this runner process's id, through the same engine (dockerode reads
 * DOCKER_HOST and the rest from the environment the watcher inherits), then exits.
 */
const SCRIPT = `
const Docker = require(process.argv[1]);
const label = process.argv[2];
process.stdin.on("error", () => undefined);
process.stdin.on("data", () => undefined);
process.stdin.once("end", async () => {
  try {
    const docker = new Docker();
    const list = await docker.listContainers({ all: true, filters: { label: [label] } });
    await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  } catch {}
  process.exit(0);
});
`;

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
    const child = spawn(process.execPath, ["-e", SCRIPT, dockerode, `${RUNNER_PROCESS_LABEL}=${ownId}`], {
      stdio: ["pipe", "ignore", "ignore"],
      detached: true,
      // Not the runner's own Node options (a loader, a preload): the watcher is plain JavaScript.
      env: { ...process.env, NODE_OPTIONS: "--max-old-space-size=16" },
    });
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
