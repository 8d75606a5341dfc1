import { readFileSync } from "node:fs";
import { join } from "node:path";

/*
 * A process as /proc tells it, read by the local backend (what it started, who is still there) and by the Docker
 * backend's watcher (which runner process it is).
 */

const PROC = "/proc";

/** What /proc/<pid>/stat says about a process. */
export interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** Field 22: when the process started, in clock ticks since boot. With the boot id, it tells a reused pid from the original. */
  startTime: number;
}

/** Reads /proc/<pid>/stat; null when there is no such process (or no /proc). */
export function readProcStat(pid: number | "self"): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(join(PROC, String(pid), "stat"), "utf8");
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces and parentheses: parse after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const startTime = Number(fields[19]);
  if (fields.length < 20 || !Number.isFinite(startTime)) return null;
  return { state: fields[0]!, ppid: Number(fields[1]), pgrp: Number(fields[2]), session: Number(fields[3]), startTime };
}
