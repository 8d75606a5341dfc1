import { readdirSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import { readProcStat } from "../proc.js";

/** How long a signal waits, at most, for the command to take it; and how often it looks. */
const WAIT_MS = 2_000;
const POLL_MS = 10;

/**
 * Whether some process of group `pgid` takes the signal of mask `bit` (its SigIgn in /proc does not hold it); null
 * when the group has no process left, or /proc cannot tell.
 */
function groupTakes(pgid: number, bit: bigint): boolean | null {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return null;
  }
  let found = false;
  for (const name of names) {
    const first = name.charCodeAt(0);
    if (first < 48 || first > 57) continue;
    const pid = Number(name);
    if (readProcStat(pid)?.pgrp !== pgid) continue;
    found = true;
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/status`, "utf8");
    } catch {
      continue; // it has just exited
    }
    const ignored = /^SigIgn:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (ignored === undefined || (BigInt(`0x${ignored}`) & bit) === 0n) return true;
  }
  return found ? false : null;
}

/**
 * Signals a command's process group once the command can take the signal. A command bubblewrap contains is
 * started ignoring the signals a client may send (runners/sandbox/sandbox.ts, `launcher`) and gets them back at their defaults
 * only once its shell runs inside the sandbox: a signal sent before then would be ignored by every process of the
 * group, and lost. So while every process of the group ignores it, the signal waits (up to WAIT_MS: a command that
 * ignores it itself gets it then, to no effect, as it would have anyway). Once the command was seen taking
 * signals, they go at once.
 */
export class TakenSignals {
  #ready = false;

  constructor(
    private readonly pgid: number,
    private readonly send: (pgid: number, signal: NodeJS.Signals) => void,
  ) {}

  async signal(signal: NodeJS.Signals): Promise<void> {
    if (!this.#ready) {
      const bit = 1n << BigInt(constants.signals[signal] - 1);
      const deadline = Date.now() + WAIT_MS;
      let takes = groupTakes(this.pgid, bit);
      while (takes === false && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        takes = groupTakes(this.pgid, bit);
      }
      if (takes) this.#ready = true;
    }
    this.send(this.pgid, signal);
  }
}
