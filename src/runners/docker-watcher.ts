import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { readProcStat } from "./orphans.js";

/** The watcher's program (docker-watcher-main.ts): the compiled file, or from the sources that file bundled once. */
let program: string[] | null = null;
function watcherProgram(): string[] {
  if (program) return program;
  const url = new URL(import.meta.url.endsWith(".ts") ? "./docker-watcher-main.ts" : "./docker-watcher-main.js", import.meta.url);
  if (!url.pathname.endsWith(".ts")) return (program = [fileURLToPath(url)]);
  // A plain `node` has no TypeScript loader: the sources are bundled by esbuild (installed with tsx), loaded only here.
  const { buildSync } = createRequire(import.meta.url)("esbuild") as typeof import("esbuild");
  const built = buildSync({
    entryPoints: [fileURLToPath(url)],
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    write: false,
    external: ["dockerode"],
    logLevel: "silent",
  });
  return (program = ["-e", built.outputFiles[0]?.text ?? ""]);
}

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
    const child = spawn(process.execPath, [...watcherProgram(), dockerode, `${RUNNER_PROCESS_LABEL}=${ownId}`], {
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
