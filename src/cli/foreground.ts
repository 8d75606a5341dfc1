import { readFileSync } from "node:fs";

/**
 * Whether this process may use its terminal as the job in front: its process group is the terminal's foreground
 * group. A job started with `&` in a shell with job control is not: changing the terminal's modes (raw mode) stops
 * it (SIGTTOU, "Stopped (tty output)"), reading from it stops it too (SIGTTIN), and resetting the screen would
 * disturb whatever runs in front. Read from /proc/self/stat (pgrp and tpgid: one small read, no subprocess);
 * where there is no /proc (macOS), or no controlling terminal, it is taken as in front, as before.
 */
export function inForeground(): boolean {
  let stat: string;
  try {
    stat = readFileSync("/proc/self/stat", "utf8");
  } catch {
    return true;
  }
  // After "pid (comm) ": state ppid pgrp session tty_nr tpgid … (comm may hold spaces and parentheses).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const pgrp = Number(fields[2]);
  const tpgid = Number(fields[5]);
  if (!Number.isInteger(pgrp) || !Number.isInteger(tpgid) || tpgid <= 0) return true;
  return pgrp === tpgid;
}
