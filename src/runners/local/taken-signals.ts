import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { constants } from "node:os";
import { basename } from "node:path";
import { readProcStat } from "../proc.js";

/** How long a signal waits, at most, for the command to take it; and how often it looks. */
const WAIT_MS = 2_000;
const POLL_MS = 10;
/** How long, at most, a signal waits for bwrap to start the command at all. */
const LAUNCH_MS = 60_000;

/** What the processes of a group show of a signal: taken by one; ignored by all (and whether any of them is the command yet); none left. */
type GroupState = "takes" | "ignored" | "launching" | "gone";

/**
 * Whether some process of the command in group `pgid` takes the signal of mask `bit` (its SigIgn in /proc does not
 * hold it). A group whose only processes are its leader (the launcher, which becomes bwrap) and bwrap's own (the one
 * in the PID namespace) is still "launching": its command has not started, however long bwrap takes to set up
 * (seconds, on a busy machine). "gone" when the group has no process left, or /proc cannot tell.
 */
function groupState(pgid: number, bit: bigint): GroupState {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return "gone";
  }
  let found = false;
  let command = false;
  for (const name of names) {
    const first = name.charCodeAt(0);
    if (first < 48 || first > 57) continue;
    const pid = Number(name);
    if (readProcStat(pid)?.pgrp !== pgid) continue;
    found = true;
    // The launcher and bwrap are not the command: what they do with the signal tells nothing of it.
    if (pid === pgid || isBwrap(pid)) continue;
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/status`, "utf8");
    } catch {
      continue; // it has just exited
    }
    command = true;
    const ignored = /^SigIgn:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (ignored === undefined || (BigInt(`0x${ignored}`) & bit) === 0n) return "takes";
  }
  if (!found) return "gone";
  return command ? "ignored" : "launching";
}

/** Whether process `pid` runs bwrap (a process whose program cannot be read is taken as the command's). */
function isBwrap(pid: number): boolean {
  try {
    return basename(readlinkSync(`/proc/${pid}/exe`)) === "bwrap";
  } catch {
    return false;
  }
}

/**
 * Signals a command's process group once the command can take the signal. A command bubblewrap contains is
 * started ignoring the signals a client may send (runners/sandbox/sandbox.ts, `launcher`) and gets them back at their defaults
 * only once its shell runs inside the sandbox: a signal sent before then would be ignored by every process of the
 * group, and lost. So while the command has not started, the signal waits for it (up to LAUNCH_MS), and while every
 * process of the command ignores it, up to WAIT_MS more (a command that ignores it itself gets it then, to no
 * effect, as it would have anyway). Once the command was seen taking signals, they go at once.
 */
export class TakenSignals {
  #ready = false;
  /** A bwrap that never starts its command (stopped, say) holds a signal this long at most. */
  readonly #launchLimit = Date.now() + LAUNCH_MS;

  constructor(
    private readonly pgid: number,
    private readonly send: (pgid: number, signal: NodeJS.Signals) => void,
  ) {}

  async signal(signal: NodeJS.Signals): Promise<void> {
    if (!this.#ready) {
      const bit = 1n << BigInt(constants.signals[signal] - 1);
      // WAIT_MS counts from when the command has started: while bwrap still sets up, nothing could take it.
      let deadline = Date.now() + WAIT_MS;
      let state = groupState(this.pgid, bit);
      while (state === "launching" ? Date.now() < this.#launchLimit : state === "ignored" && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        const was = state;
        state = groupState(this.pgid, bit);
        if (was === "launching" && state === "ignored") deadline = Date.now() + WAIT_MS;
      }
      if (state === "takes") this.#ready = true;
    }
    this.send(this.pgid, signal);
  }
}
