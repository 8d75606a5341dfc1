import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { realOrPlanned, within } from "../paths.js";
import { HomeSeen } from "./in-project.js";
import { processStartTicks } from "./lock.js";
import { viewsDir } from "./registry.js";

/*
 * The views of the sandboxed commands running on this machine now (SPEC §7 "What a command sees"). A command's view
 * is fixed when it starts: its project root (or its cwd, when it has none) and the configured paths, as they are on
 * the machine. A Spool home made inside one of them while the command runs is in that command's view: it could read
 * the new server's token. A project is refused as a home's place for good (in-project.ts); the rest of a view is
 * refused while a command that sees it runs: each local or Docker sandbox records its view (registry.ts `viewsDir`:
 * in the user's home whatever HOME says) before it reads the registry of homes, and a server records its home in the
 * registry before it reads these records, so of a home and a command started together with one registry, one of them
 * sees the other (the home is refused, or the command is, by the registry's check).
 *
 * One file per running command, named by the runner's pid and a random part, holding the runner's pid and the
 * sandbox's once started, each with when it started (so a pid used again is not taken for it), and the view's roots;
 * removed when the command ends. A record whose processes are all gone (a runner killed, and its sandbox) is ignored
 * and removed by the next reader.
 */

interface Recorded {
  /** The runner process, and the sandbox's own once started: each with its start (clock ticks since boot). */
  processes: { pid: number; since: number }[];
  roots: string[];
}

/** A process as it is now: its pid and start, or null when it is gone. */
const live = (pid: number) => {
  const since = processStartTicks(pid);
  return since === null ? null : { pid, since };
};

/** The home (or a runner's state directory) lies in the view of a sandboxed command running now. */
export class HomeInView extends HomeSeen {
  override readonly name = "HomeInView";
}

/**
 * The record of one command's view: `record` when its view is known (before the registry of homes is read), `add` its
 * process once started, `release` when it has ended or did not start (in any order; `release` ends it). Never throws:
 * a view that cannot be recorded (a directory that cannot be made) leaves the command to run, as a home that cannot
 * be recorded leaves its server to start (registry.ts).
 */
export class ViewRecord {
  #file: string | null = null;
  #recorded: Recorded | null = null;
  #released = false;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  /** Records that this process's command sees `roots` (real paths). */
  record(roots: readonly string[]): void {
    const runner = live(process.pid);
    if (this.#released || this.#recorded || !runner) return;
    const dir = viewsDir(this.env);
    this.#recorded = { processes: [runner], roots: [...new Set(roots)] };
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.#file = join(dir, `${process.pid}-${randomBytes(6).toString("hex")}.json`);
      this.#write();
    } catch {
      this.#file = null;
    }
  }

  /** The sandbox's process, started: the record stands while it or the runner lives. */
  add(pid: number | undefined): void {
    const started = pid === undefined ? null : live(pid);
    if (!this.#file || !this.#recorded || !started) return;
    this.#recorded.processes.push(started);
    try {
      this.#write();
    } catch {
      // the record stands as it was: by the runner
    }
  }

  /** The command has ended (or never started): its view is no longer seen. */
  readonly release = (): void => {
    this.#released = true;
    const file = this.#file;
    this.#file = null;
    if (!file) return;
    try {
      unlinkSync(file);
    } catch {
      // gone already
    }
  };

  /** Written whole under a private name, then renamed: a reader never finds half a record. */
  #write(): void {
    const file = this.#file!;
    writeFileSync(`${file}.tmp`, JSON.stringify(this.#recorded), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
}

/**
 * The view root of a running command that holds `path` (or that `path` is), and a live process of it (its runner, or
 * its sandbox once the runner is gone); null when none does.
 */
export function viewHolding(path: string, env: NodeJS.ProcessEnv = process.env): { root: string; pid: number; runner: boolean } | null {
  const dir = viewsDir(env);
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith(".json"));
  } catch {
    return null;
  }
  const real = realOrPlanned(resolve(path));
  for (const name of names) {
    let record: Partial<Recorded> | null;
    try {
      record = JSON.parse(readFileSync(join(dir, name), "utf8")) as Partial<Recorded> | null;
    } catch {
      // being written (renamed into place whole: not yet), or being removed
      continue;
    }
    const processes = Array.isArray(record?.processes) ? record.processes : [];
    const alive = processes.find((p) => typeof p?.pid === "number" && live(p.pid)?.since === p.since);
    if (!Array.isArray(record?.roots) || !alive) {
      // Its runner is gone, and so is its sandbox (or it is no record of this kind).
      try {
        unlinkSync(join(dir, name));
      } catch {
        // another reader removed it
      }
      continue;
    }
    const root = record.roots.find((root) => typeof root === "string" && within(real, root));
    if (root) return { root, pid: alive.pid, runner: alive === processes[0] };
  }
  return null;
}

/**
 * Throws HomeInView when `path` (a home, a runner's state directory) lies in the view of a sandboxed command running
 * now; `what` names it and `risk` says what the command could do with it.
 */
export function checkOutsideViews(path: string, what: string, risk: string, env: NodeJS.ProcessEnv = process.env): void {
  const found = viewHolding(path, env);
  if (!found) return;
  throw new HomeInView(
    `Refusing to start: ${what} ${path} lies in ${found.root}, which a sandboxed command running now sees (its ${found.runner ? "runner" : "sandbox"} is process ${found.pid}), so ${risk}. Wait for that command to end, or choose a place no command sees`,
  );
}

/** Throws HomeInView (saying what to do) when `home` lies in the view of a sandboxed command running now. */
export function checkHomeOutsideViews(home: string, env: NodeJS.ProcessEnv = process.env): void {
  checkOutsideViews(home, "the Spool home", "it could read this home's token and database once the server has made them", env);
}
