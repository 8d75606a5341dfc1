import { closeSync, readdirSync, readFileSync } from "node:fs";

/** fdinfo's flag for a descriptor closed at exec (O_CLOEXEC, octal). */
const CLOSE_ON_EXEC = 0o2000000;

/**
 * Closes the descriptors this process inherited beyond stdin, stdout and stderr (SPEC §7 "Sandbox modes"): a
 * descriptor not marked close-on-exec passes to every process started from here, so a command, sandboxed or not,
 * would hold what the process that started Spool left open (a pipe to it, a file it writes: seen from a shell that
 * kept fd 251). Node marks what it inherited close-on-exec only from 0 up to the first closed descriptor past 15
 * (libuv's `uv_disable_stdio_inheritance`): one past a gap stayed open to every command. Node's own descriptors
 * are all close-on-exec and stay, and so does its IPC channel to a parent.
 * Called first by the commands that run commands (`spool serve`, `spool runner`); says which it closed. Where /proc
 * does not say (not Linux), nothing is closed.
 */
export function letGoOfInherited(): number[] {
  let names: string[];
  try {
    names = readdirSync("/proc/self/fd");
  } catch {
    return [];
  }
  const channel = Number(process.env.NODE_CHANNEL_FD ?? -1);
  const closed: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (fd <= 2 || fd === channel) continue;
    let flags: number;
    try {
      const match = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
      if (!match) continue;
      flags = Number.parseInt(match[1]!, 8);
    } catch {
      continue; // the listing's own descriptor, gone by now
    }
    if (flags & CLOSE_ON_EXEC) continue;
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      // closed meanwhile
    }
  }
  return closed;
}
