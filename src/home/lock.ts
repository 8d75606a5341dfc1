import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

/**
 * One server per Spool home. Two servers on one database would each reap the
 * other's producers as orphans and kill each other's commands, so the second
 * refuses to start. The lock is a file, `spool.lock`, holding the owner's pid
 * and its start time; it is created atomically (a hard link of a complete
 * file, which fails if the name exists) and is stale when that pid is gone, is
 * a zombie (dead, not yet reaped by its parent), or now belongs to another
 * process (another start time in /proc/<pid>/stat). A holder that is exiting
 * (killed a moment ago) is waited for a few seconds before a start is refused.
 */

export const LOCK_FILE = "spool.lock";

export interface LockOwner {
  pid: number;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); null where /proc is missing. */
  startTicks: number | null;
  /** Wall-clock time the lock was taken, ISO 8601. */
  startedAt: string;
  hostname: string;
  /** Tells two locks of one process apart (two servers started in one process). */
  nonce: string;
}

/** A second server tried to use a home that a live one holds. */
export class HomeLocked extends Error {
  override readonly name = "HomeLocked";
  constructor(
    readonly home: string,
    readonly owner: LockOwner,
  ) {
    super(
      `${home} is in use by another Spool server: pid ${owner.pid}${owner.pid === process.pid ? " (this very process)" : ""}${owner.hostname !== hostname() ? ` on ${owner.hostname}` : ""}, running since ${owner.startedAt} (lock file ${join(home, LOCK_FILE)}). Stop that server first, or give this one another --home.`,
    );
  }
}

export interface HomeLock {
  readonly file: string;
  readonly owner: LockOwner;
  /** Removes the lock if it is still ours; safe to call twice. */
  release(): void;
}

interface ProcStat {
  /** One letter: R running, S sleeping, D disk wait, Z zombie, X dead… */
  state: string;
  /** The kernel's per-process flags (PF_*). */
  flags: number;
  startTicks: number | null;
}

/** A process's /proc/<pid>/stat, or null (no /proc, or no such process). */
function procStat(pid: number): ProcStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    return { state: fields[0] ?? "", flags: Number(fields[6]) || 0, startTicks: Number.isFinite(ticks) ? ticks : null };
  } catch {
    return null;
  }
}

/** Start time of a process in clock ticks since boot, or null (no /proc, or no such process). */
export function processStartTicks(pid: number): number | null {
  return procStat(pid)?.startTicks ?? null;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it is just not ours to signal.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The kernel's flag of a process tearing itself down (PF_EXITING). */
const PF_EXITING = 0x4;
/** SIGKILL's bit in /proc/<pid>/status's pending-signal masks. */
const SIGKILL_BIT = 1n << 8n;

/**
 * Whether a process is on its way out: the kernel is tearing it down, or a SIGKILL is pending for it. Such a
 * holder is waited for a little before a start is refused (`kill -9` then an immediate restart).
 */
function processExiting(pid: number): boolean {
  const stat = procStat(pid);
  if (stat === null) return false;
  if ((stat.flags & PF_EXITING) !== 0) return true;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    for (const match of status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)) if ((BigInt(`0x${match[1]}`) & SIGKILL_BIT) !== 0n) return true;
  } catch {
    // gone meanwhile
  }
  return false;
}

/** Whether the process that wrote `owner` is still running (the same process, not a later one with its pid). */
export function ownerAlive(owner: LockOwner): boolean {
  // Only the pid is checked, not the host name: SQLite's WAL works only between processes of one machine, and a
  // container recreated on the same volume gets a new host name while its dead predecessor's lock is plainly stale.
  if (!processExists(owner.pid)) return false;
  const stat = procStat(owner.pid);
  // A zombie (Z) or a dead process (X) has let go of its files and locks; it is only waiting for its parent to reap
  // it, which may take long (a parent that never waits, a container without an init).
  if (stat !== null && (stat.state === "Z" || stat.state === "X")) return false;
  if (owner.startTicks === null) return true;
  const now = stat?.startTicks ?? null;
  return now === null || now === owner.startTicks;
}

/** How long a start waits for a holder that is exiting before refusing. */
const EXITING_WAIT_MS = 5_000;

function readOwner(file: string): LockOwner | null {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockOwner>;
    if (typeof parsed.pid === "number" && Number.isInteger(parsed.pid) && parsed.pid > 0) {
      return {
        pid: parsed.pid,
        startTicks: typeof parsed.startTicks === "number" ? parsed.startTicks : null,
        startedAt: typeof parsed.startedAt === "string" ? parsed.startedAt : "an unknown time",
        hostname: typeof parsed.hostname === "string" ? parsed.hostname : hostname(),
        nonce: typeof parsed.nonce === "string" ? parsed.nonce : "",
      };
    }
  } catch {
    // not JSON: written by something else, or damaged
  }
  // The lock is linked into place complete, so this is no half-written lock of a starting server: it is garbage.
  return { pid: 0, startTicks: null, startedAt: "an unknown time", hostname: hostname(), nonce: "" };
}

const sameOwner = (a: LockOwner | null, b: LockOwner) => a !== null && a.pid === b.pid && a.nonce === b.nonce && a.startTicks === b.startTicks;

/** Locks held by this process, released when it exits (a crash leaves a lock that the next start finds stale). */
const held = new Set<HomeLock>();
let exitHook = false;

/**
 * Takes the home's lock, or throws HomeLocked naming the live process that
 * holds it. A stale lock (its process is gone) is replaced.
 */
export function acquireHomeLock(home: string): HomeLock {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const file = join(home, LOCK_FILE);
  const owner: LockOwner = {
    pid: process.pid,
    startTicks: processStartTicks(process.pid),
    startedAt: new Date().toISOString(),
    hostname: hostname(),
    nonce: randomBytes(8).toString("hex"),
  };
  // Written whole under a private name first, then linked into place: whoever finds spool.lock finds it complete.
  const draft = join(home, `${LOCK_FILE}.${process.pid}.${owner.nonce}`);
  writeFileSync(draft, `${JSON.stringify(owner)}\n`, { mode: 0o600, flag: "wx" });
  const exitingDeadline = Date.now() + EXITING_WAIT_MS;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(draft, file);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const current = readOwner(file);
      if (current === null) continue; // released meanwhile: try again
      if (current.pid !== 0 && ownerAlive(current)) {
        // A holder killed a moment ago is still tearing down: wait for it to be gone (or a zombie) before refusing.
        if (processExiting(current.pid) && Date.now() < exitingDeadline) {
          attempt--;
          pause(20);
          continue;
        }
        throw new HomeLocked(home, current);
      }
      if (attempt >= 50) throw new Error(`Could not take the lock ${file}: other servers keep replacing it`);
      if (!removeStale(home, file, current)) pause(20);
    }
  } finally {
    unlinkSync(draft);
  }
  const lock: HomeLock = {
    file,
    owner,
    release() {
      if (!held.delete(lock)) return;
      try {
        if (sameOwner(readOwner(file), owner)) unlinkSync(file);
      } catch {
        // already gone
      }
    },
  };
  held.add(lock);
  if (!exitHook) {
    exitHook = true;
    process.once("exit", () => {
      for (const l of [...held]) l.release();
    });
  }
  return lock;
}

/**
 * Removes a stale lock. Two servers starting at once may both find it stale: a
 * guard file (created exclusively) lets one of them remove it, and it removes it
 * only if it still is the stale one it read, never a fresh lock the other took.
 */
function removeStale(home: string, file: string, stale: LockOwner): boolean {
  const guard = join(home, `${LOCK_FILE}.takeover`);
  try {
    writeFileSync(guard, `${process.pid}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    // Someone else is taking over; a guard left by a crash in these few lines is old and goes.
    try {
      if (Date.now() - statSync(guard).mtimeMs > 10_000) unlinkSync(guard);
    } catch {
      // gone meanwhile
    }
    return false;
  }
  try {
    const current = readOwner(file);
    if (current !== null && current.pid === stale.pid && current.nonce === stale.nonce && current.startTicks === stale.startTicks) unlinkSync(file);
  } finally {
    unlinkSync(guard);
  }
  return true;
}

/** Blocks for `ms` (start-up only, while another server finishes taking over a stale lock). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
