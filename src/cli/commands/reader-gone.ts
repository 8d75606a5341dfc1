import { fstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";

/** How often the pipe's known readers are looked at: `head` gone is noticed within this (the issue asks 1 s). */
const CHECK_MS = 200;

/** The `/proc` entries of processes holding `pipe` open for reading, or null when some process's fds cannot be read. */
function readersOf(pipe: string): string[] | null {
  const found: string[] = [];
  let hidden = false;
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch (error) {
      // A process that ended during the scan holds nothing; one we may not look into might be the reader.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") hidden = true;
      continue;
    }
    for (const fd of fds) if (isReader(pid, fd, pipe)) found.push(`${pid}/${fd}`);
  }
  return found.length > 0 || !hidden ? found : null;
}

/** Whether `/proc/PID/fd/FD` is `pipe` opened for reading (a pipe's read end is O_RDONLY, its write end O_WRONLY). */
function isReader(pid: string, fd: string, pipe: string): boolean {
  try {
    if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== pipe) return false;
    const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"));
    return flags !== null && (Number.parseInt(flags[1]!, 8) & 3) === 0;
  } catch {
    return false;
  }
}

/**
 * Calls `gone` once nobody reads the pipe `fd` writes to (`spool tail -f | head -2`: head exited), without
 * waiting for the next write to fail with EPIPE, as GNU `tail -f` does with poll(2). Node offers no poll on a
 * write-only pipe, so on Linux the pipe's readers are found in /proc and their fds looked at every 200 ms; once
 * they are all gone, one more scan makes sure no other process holds the read end. Elsewhere, when `fd` is not
 * a pipe, or when a reader could hide in a process this user may not look into, nothing is watched and the next
 * write's EPIPE ends the command as before. Returns the stop.
 */
export function whenReaderGone(fd: number, gone: () => void): () => void {
  let pipe: string;
  try {
    if (process.platform !== "linux" || !fstatSync(fd).isFIFO()) return () => undefined;
    pipe = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return () => undefined;
  }
  let known = readersOf(pipe);
  if (known === null) return () => undefined;
  const timer = setInterval(() => {
    known = known!.filter((entry) => {
      const [pid, fdNumber] = entry.split("/") as [string, string];
      return isReader(pid, fdNumber, pipe);
    });
    if (known.length > 0) return;
    known = readersOf(pipe);
    if (known === null) return clearInterval(timer);
    if (known.length > 0) return;
    clearInterval(timer);
    gone();
  }, CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
