import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../logger.js";
import type { ProcessRecorder } from "../backend.js";
import { type ProcStat, readProcStat } from "../proc.js";
import { killCgroup } from "./container.js";

/**
 * Told by a backend about the process groups it starts and sees end, so that
 * a runner killed without a chance to clean up (SIGKILL, OOM) leaves a record
 * its next incarnation can act on.
 */
export type { ProcessRecorder };

/** One record: a process group some runner started, and who that runner was. */
export interface ProcessRecord {
  version: 1;
  /** The group id, which is the leader's pid. */
  pgid: number;
  /** The leader's start time (ticks since boot). */
  startTime: number;
  bootId: string;
  /** The runner process that started the group: a record whose owner still runs is left alone. */
  owner: { pid: number; startTime: number };
  /** The command's cgroup (container.ts), when it has one: everything in it is killed, daemons that left the group too. */
  cgroup?: string;
  command: string;
  recordedAt: string;
}

const PROC = "/proc";

let cachedBootId: string | null | undefined;

/** This boot's id (/proc/sys/kernel/random/boot_id); null where the kernel has none. */
export function bootId(): string | null {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync(join(PROC, "sys/kernel/random/boot_id"), "utf8").trim() || null;
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId;
}

const alive = (stat: ProcStat | null): stat is ProcStat => stat !== null && stat.state !== "Z" && stat.state !== "X";

/** Whether the process `pid` still runs and is the one that started at `startTime` (not a reused pid, not a zombie). */
function isSameProcess(pid: number, startTime: number): boolean {
  const stat = readProcStat(pid);
  return alive(stat) && stat.startTime === startTime;
}

/**
 * The live members of the recorded group. Empty when the group is gone or
 * when its id now belongs to someone else: the leader's pid running with
 * another start time means the pid was reused (a pid is never reused while
 * a group of that id still has members); with the leader gone, only members
 * that started no earlier than the recorded leader count.
 */
export function liveMembers(record: Pick<ProcessRecord, "pgid" | "startTime">): number[] {
  return liveMembersOf([record]).get(record.pgid) ?? [];
}

/**
 * liveMembers for several records with one pass over /proc (a read per
 * process): the live members of each record's group, by group id.
 */
export function liveMembersOf(records: readonly Pick<ProcessRecord, "pgid" | "startTime">[]): Map<number, number[]> {
  const members = new Map<number, number[]>();
  const wanted = new Map<number, number>();
  for (const record of records) {
    members.set(record.pgid, []);
    const leader = readProcStat(record.pgid);
    if (!leader || leader.startTime === record.startTime) wanted.set(record.pgid, record.startTime);
  }
  if (wanted.size === 0) return members;
  let names: string[];
  try {
    names = readdirSync(PROC);
  } catch {
    return members;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readProcStat(Number(name));
    if (!alive(stat)) continue;
    const startTime = wanted.get(stat.pgrp);
    if (startTime !== undefined && stat.startTime >= startTime) members.get(stat.pgrp)!.push(Number(name));
  }
  return members;
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): "sent" | "gone" | "denied" {
  try {
    process.kill(-pgid, signal);
    return "sent";
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ESRCH") return "gone";
    if (code === "EPERM") return "denied";
    throw error;
  }
}

/** Whether any process (zombies included) is left in group `pgid`: one cheap kill(2), no /proc scan. */
function groupExists(pgid: number): boolean {
  return signalGroup(pgid, 0) !== "gone";
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits (up to `waitMs`) until process group `pgid`, whose leader started at `startTime` (null: unknown, it was
 * reaped before it was seen), has no live member left.
 *
 * A command bubblewrap contains (a sandbox, or a `full` command's PID namespace) ends before its namespace does:
 * bwrap outside exits as soon as the command's own process does, while the namespace's init (pid 1, in the
 * command's group, never leaving it) still waits for what the command left there, a setsid daemon say. It goes
 * only once that bwrap has gone (`--die-with-parent` sends it SIGKILL), and the kernel kills and reaps everything
 * in the namespace before it lets the init become a zombie. So an init no longer alive means an empty namespace;
 * and with the leader gone, what is left of the group is inside the namespace.
 */
/** The first child of `pid` (bwrap's own: its PID namespace's init), with its start time; null when none is seen. */
function firstChild(pid: number): { pid: number; startTime: number } | null {
  let text: string;
  try {
    text = readFileSync(join(PROC, String(pid), "task", String(pid), "children"), "utf8");
  } catch {
    return null;
  }
  const child = Number.parseInt(text, 10);
  const stat = Number.isSafeInteger(child) ? readProcStat(child) : null;
  return alive(stat) ? { pid: child, startTime: stat.startTime } : null;
}

/** How long after a contained command's start its namespace's init is looked for. */
const INIT_LOOK_MS = 20;

/**
 * The end of a command bubblewrap contains (see groupEnded), watched from its start: its leader's start time now,
 * and its namespace's init once it is there (bwrap's first child, read once, INIT_LOOK_MS after the start). `ended`
 * waits for that init alone, a /proc read each time; a command that ended before it was seen falls back to
 * groupEnded. (An init that died lingers as a zombie until the host's init reaps it, which some take seconds to:
 * the group is not empty meanwhile, but the namespace is.)
 */
export function containedEnd(pid: number, waitMs = 2000): { ended(): Promise<void> } {
  const startTime = readProcStat(pid)?.startTime ?? null;
  let init: { pid: number; startTime: number } | null = null;
  const look = setTimeout(() => {
    init = firstChild(pid);
  }, INIT_LOOK_MS);
  look.unref();
  return {
    async ended() {
      clearTimeout(look);
      if (!init) return groupEnded(pid, startTime, waitMs);
      const deadline = Date.now() + waitMs;
      for (let delay = 1; isSameProcess(init.pid, init.startTime) && Date.now() < deadline; delay = Math.min(delay * 2, 50)) await sleep(delay);
    },
  };
}

export async function groupEnded(pgid: number, startTime: number | null, waitMs = 2000): Promise<void> {
  // Cheap kill(2)s first, a few ms apart: most commands leave nothing, and their init follows them within
  // milliseconds (no /proc scan: the ends of many commands at once would each read every process's stat).
  const deadline = Date.now() + waitMs;
  for (let delay = 1; delay <= 16; delay *= 2) {
    if (!groupExists(pgid)) return;
    await sleep(delay);
  }
  if (!groupExists(pgid)) return;
  // Something lives on (a daemon the init waits for, or a zombie not yet reaped): one scan finds what is left (the
  // init among it, which outlives the rest); then only those are watched, a /proc read each.
  let left = liveMembers({ pgid, startTime: startTime ?? 0 }).flatMap((pid) => {
    const stat = readProcStat(pid);
    return alive(stat) ? [{ pid, startTime: stat.startTime }] : [];
  });
  for (let delay = 2; left.length > 0 && Date.now() < deadline; delay = Math.min(delay * 2, 50)) {
    await sleep(delay);
    left = left.filter((p) => isSameProcess(p.pid, p.startTime));
  }
}

function parseRecord(text: string): ProcessRecord | null {
  try {
    const r = JSON.parse(text) as Partial<ProcessRecord>;
    const int = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
    if (r.version !== 1 || !int(r.pgid) || !Number.isSafeInteger(r.startTime) || typeof r.bootId !== "string") return null;
    if (!r.owner || !int(r.owner.pid) || !Number.isSafeInteger(r.owner.startTime)) return null;
    if (r.cgroup !== undefined && (typeof r.cgroup !== "string" || !r.cgroup.startsWith("/"))) return null;
    return r as ProcessRecord;
  } catch {
    return null;
  }
}

export interface ReapResult {
  /** Groups that were still running and were killed. */
  killed: ProcessRecord[];
  /** Records dropped without killing anything (group gone, pid reused, another boot, unreadable). */
  forgotten: number;
  /** Records left alone because the runner that wrote them still runs. */
  kept: number;
}

/**
 * Kills the process groups that dead runners left behind in `dir`: a record
 * whose owner no longer runs, from this boot, whose group still has live
 * members (see liveMembers) gets TERM, then KILL after `killGraceMs`; the
 * record is removed. Records of live owners are left alone, so several
 * runners may share a directory. Resolves once the groups are gone (or
 * KILLed).
 */
export async function reapLeftovers(dir: string, log: Logger, options: { killGraceMs?: number } = {}): Promise<ReapResult> {
  const result: ReapResult = { killed: [], forgotten: 0, kept: 0 };
  const boot = bootId();
  if (boot === null) return result; // no /proc: nothing was recorded either
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return result;
  }
  const forget = (name: string) => rmSync(join(dir, name), { force: true });
  const targets: { record: ProcessRecord; name: string }[] = [];
  for (const name of names) {
    if (name.endsWith(".tmp")) {
      // A write cut short by a crash; anything younger may be a live writer's.
      try {
        if (Date.now() - statSync(join(dir, name)).mtimeMs > 60_000) forget(name);
      } catch {}
      continue;
    }
    if (!name.endsWith(".json")) continue;
    let record: ProcessRecord | null = null;
    try {
      record = parseRecord(readFileSync(join(dir, name), "utf8"));
    } catch {}
    if (!record || record.bootId !== boot) {
      // Unreadable, or from before a reboot (its processes died with the machine).
      forget(name);
      result.forgotten++;
      continue;
    }
    if (isSameProcess(record.owner.pid, record.owner.startTime)) {
      result.kept++;
      continue;
    }
    // A command's cgroup holds all it started: killed whole (no TERM first: its runner is gone, and nothing inside can leave it).
    if (record.cgroup && (await killCgroup(record.cgroup, options.killGraceMs ?? 2000, { parent: true }))) {
      log.warn(`killed the cgroup ${record.cgroup} of ${record.command}, left running by runner process ${record.owner.pid} that ended without stopping it`);
      if (liveMembers(record).length > 0) signalGroup(record.pgid, "SIGKILL");
      forget(name);
      result.killed.push(record);
      continue;
    }
    if (liveMembers(record).length === 0) {
      forget(name);
      result.forgotten++;
      continue;
    }
    const sent = signalGroup(record.pgid, "SIGTERM");
    if (sent === "denied") log.warn(`cannot kill leftover process group ${record.pgid} (${record.command}): not permitted`);
    if (sent !== "sent") {
      forget(name);
      result.forgotten++;
      continue;
    }
    log.warn(`killing process group ${record.pgid} (${record.command}), left running by runner process ${record.owner.pid} that ended without stopping it`);
    targets.push({ record, name });
  }
  const deadline = Date.now() + (options.killGraceMs ?? 2000);
  let remaining = targets;
  while (remaining.length > 0 && Date.now() < deadline) {
    await sleep(25);
    remaining = remaining.filter((t) => liveMembers(t.record).length > 0);
  }
  for (const t of remaining) {
    if (liveMembers(t.record).length > 0) signalGroup(t.record.pgid, "SIGKILL");
  }
  for (const t of targets) {
    forget(t.name);
    result.killed.push(t.record);
  }
  if (result.killed.length > 0) log.info(`killed ${result.killed.length} process group(s) left running by a runner that died (records in ${dir})`);
  return result;
}

/**
 * Records the process groups one runner process starts, one small file per
 * group in `dir` (written to a temporary name and renamed, so a reader never
 * sees half a record), and removes each record once its group is gone. A
 * group that outlives its leader (a command that left something running in
 * the background) keeps its record until its last member is gone.
 * Without /proc (not Linux) it records nothing.
 */
export class ProcessRegistry implements ProcessRecorder {
  readonly #owner: { pid: number; startTime: number } | null;
  readonly #boot = bootId();
  /** Record file per leader pid. */
  readonly #files = new Map<number, { file: string; record: ProcessRecord }>();
  /** Groups whose leader exited while members were left. */
  readonly #lingering = new Map<number, { file: string; record: ProcessRecord }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    private readonly log: Logger,
    private readonly options: {
      lingerCheckMs?: number;
      /** Told each time the registry reads /proc, with the number of groups that one scan checks (for tests). */
      onProcScan?: (groups: number) => void;
    } = {},
  ) {
    const self = readProcStat("self");
    this.#owner = self && this.#boot ? { pid: process.pid, startTime: self.startTime } : null;
  }

  started(pid: number, command: string, cgroup?: string): void {
    if (!this.#owner || !this.#boot) return;
    const stat = readProcStat(pid);
    // Only our own unreaped child: after a reap the pid could already be someone else's.
    if (!stat || stat.ppid !== process.pid) return;
    const record: ProcessRecord = {
      version: 1,
      pgid: pid,
      startTime: stat.startTime,
      bootId: this.#boot,
      owner: this.#owner,
      ...(cgroup ? { cgroup } : {}),
      command: command.length > 200 ? `${command.slice(0, 199)}…` : command,
      recordedAt: new Date().toISOString(),
    };
    const file = join(this.dir, `${pid}-${stat.startTime}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      writeFileSync(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
      renameSync(tmp, file);
      this.#files.set(pid, { file, record });
    } catch (error) {
      rmSync(tmp, { force: true });
      this.log.warn(`cannot record process ${pid} in ${this.dir}: ${(error as Error).message}`);
    }
  }

  exited(pid: number): void {
    const entry = this.#files.get(pid);
    if (!entry) return;
    this.#files.delete(pid);
    // One kill(2); a group still there (often only members being reaped) waits for the next check, which
    // reads /proc once for all such groups: a scan per exit stalled a runner whose hundreds of commands
    // ended together for seconds.
    if (!groupExists(pid)) {
      this.#forget(entry.file);
      return;
    }
    this.#lingering.set(pid, entry);
    this.#schedule();
  }

  /** Record files this registry holds now (for tests and diagnostics). */
  get recorded(): string[] {
    return [...this.#files.values(), ...this.#lingering.values()].map((e) => e.file);
  }

  #schedule(): void {
    if (this.#timer || this.#lingering.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#check();
      this.#schedule();
    }, this.options.lingerCheckMs ?? 5_000);
    this.#timer.unref();
  }

  /** Forgets the lingering groups that are gone: a kill(2) each, then one /proc scan for those still there. */
  #check(): void {
    const left: { file: string; record: ProcessRecord }[] = [];
    for (const [pid, entry] of this.#lingering) {
      if (groupExists(pid)) left.push(entry);
      else {
        this.#lingering.delete(pid);
        this.#forget(entry.file);
      }
    }
    if (left.length === 0) return;
    this.options.onProcScan?.(left.length);
    const members = liveMembersOf(left.map((e) => e.record));
    for (const { file, record } of left) {
      if ((members.get(record.pgid) ?? []).length > 0) continue;
      this.#lingering.delete(record.pgid);
      this.#forget(file);
    }
  }

  #forget(file: string): void {
    try {
      rmSync(file, { force: true });
    } catch (error) {
      this.log.warn(`cannot remove ${file}: ${(error as Error).message}`);
    }
  }
}

/**
 * Kills what a previous incarnation of this runner left running (see
 * reapLeftovers), then returns a registry recording what this one starts.
 */
export async function openProcessRegistry(dir: string, log: Logger, options: { killGraceMs?: number } = {}): Promise<ProcessRegistry> {
  await reapLeftovers(dir, log, options);
  return new ProcessRegistry(dir, log);
}
