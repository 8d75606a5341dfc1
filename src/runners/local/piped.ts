// A local command spawned with pipes (execa) as the leader of its own process group: the spawn, its group's signals, its input.
import type { Readable, Writable } from "node:stream";
import { type ExecSpec, StartError } from "../backend.js";
import { signalName, streamControl } from "../control.js";
import { SETUP_FD, type SetupMarker, setUp } from "../sandbox/setup.js";
import type { CommandCgroup } from "./container.js";
import type { TakenSignals } from "./taken-signals.js";

/** execa's stdio from descriptor 3 on for a sandbox that says on SETUP_FD that it is set up. */
const MARKER_STDIO = [...Array.from({ length: SETUP_FD - 3 }, () => "ignore" as const), "pipe" as const];

/** Sends `signal` to a whole process group; a group that is already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/**
 * Spawns the command with pipes, leading its own process group; a spawn that fails kills its cgroup and is a
 * StartError. `setUpDone` tells whether a sandbox said it is set up (null: no marker descriptor).
 */
export async function spawnPiped(
  spec: ExecSpec,
  launch: { file: string; args: string[]; cwd: string; env: Record<string, string> },
  setup: SetupMarker | null,
  cgroup: CommandCgroup | undefined,
) {
  // execa is loaded by the first command (~2 MB of heap a server whose commands all run elsewhere never holds).
  const { execa } = await import("execa");
  const subprocess = execa(launch.file, launch.args, {
    cwd: launch.cwd,
    env: launch.env,
    extendEnv: false,
    detached: true, // its own process group, so a cancel reaches its children too
    cleanup: false,
    buffer: false,
    reject: false,
    encoding: "buffer",
    stripFinalNewline: false,
    ...(spec.stdin ? { input: spec.stdin } : {}),
    // A sandbox says on SETUP_FD that it is set up (runners/sandbox/setup.ts); the descriptors between are not opened.
    stdio: [spec.stdin || spec.interactive ? "pipe" : "ignore", "pipe", "pipe", ...(setup && "fd" in setup ? MARKER_STDIO : [])],
  });
  // Listened to at once: an unread descriptor is let go (execa resumes it a turn later, Node at the exit).
  const markerStream = setup && "fd" in setup ? (subprocess.stdio as unknown as (Readable | null)[])[SETUP_FD] : null;
  const setUpDone = markerStream ? setUp(markerStream, spec.signal) : null;
  // execa settles with a result object (reject: false); the process's own events tell us more precisely.
  const settled = subprocess.then((r) => r);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    subprocess.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const spawnError = await new Promise<Error | null>((resolve) => {
    subprocess.once("spawn", () => resolve(null));
    subprocess.once("error", (error) => resolve(error));
  });
  if (spawnError || subprocess.pid === undefined) {
    await cgroup?.kill();
    const result = await settled;
    const detail = ("originalMessage" in result && result.originalMessage ? result.originalMessage : spawnError?.message)?.split("\n")[0];
    throw new StartError(`Cannot start the command: ${detail ?? "unknown error"}`);
  }
  return { subprocess, pid: subprocess.pid, setUpDone, settled, exited };
}

export type PipedChild = Awaited<ReturnType<typeof spawnPiped>>;

/** An interactive command's input and signals; a contained command's signals wait until it runs inside. */
export function inputControl(stdin: Writable, pid: number, signals: TakenSignals | null) {
  return streamControl(stdin, { signal: async (name) => (signals ? signals.signal(signalName(name)) : signalGroup(pid, signalName(name))) }, { tty: false });
}
