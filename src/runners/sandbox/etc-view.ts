import {
  chmodSync,
  copyFileSync,
  type FSWatcher,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  type Stats,
  statfsSync,
  symlinkSync,
  watch,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { inSystem, LOCAL_ETC, localRealDir, within } from "./view.js";

/*
 * The sandbox's /etc and /usr/local/etc (SPEC §7 "What a command sees"): the machine's, as every user of the machine
 * may read them. A runner running as root reads their root-only files (owner read is enough, no capability needed): in
 * /etc the SSH host keys, /etc/shadow, /etc/docker/key.json, a database's pg_hba.conf; in /usr/local/etc, where locally
 * installed software keeps its configuration, its keys and tokens. So the sandbox is given a copy of each holding the
 * entries others may read (a file others may read, a directory others may enter and list, every link as it is), never
 * the rest. Binding each such entry one by one would cost bubblewrap a read of the mount table per bind (O(n²): ~80 ms
 * for /etc's 170 top-level entries); a copy is one bind.
 *
 * One copy per directory per process, made when the runner probes its sandbox (/usr/local/etc's when the machine has
 * it, else at the first start that finds it) and kept in step: every directory copied is watched (inotify: a file
 * created, removed, renamed, written or whose mode changed), and what changed in the directories that changed is
 * copied again at once (and at the latest before the next start) — a file made private disappears from the copy, so
 * also from the sandboxes running on it. The copies are in memory where they can be ($XDG_RUNTIME_DIR or /dev/shm, a
 * tmpfs: 5 MB of /etc took this machine seconds on its disk under load, 0.3 s of CPU in memory), in a directory only
 * this user may enter (`${dir}/etc`, `${dir}/usr/local/etc`), removed when the process exits (and, when a process was
 * killed before, by the next one that starts).
 *
 * /usr/local/etc is copied where its files are: its real path when that is a directory the sandbox would show as it is
 * (in /usr, or another system directory bound as it is), so the copy is bound there and a link to it, /usr/local/etc
 * itself or one on its way, leads to the copy. A link into /etc leads to /etc's copy already; one out of the system
 * directories (/opt/local/etc) leads nowhere inside: nothing to copy. Where it is is looked at again at every start.
 */

const ETC = "/etc";
const PREFIX = "spool-etc-";

/** Whether everyone may read a file, or enter and list a directory. */
const everyone = (stat: Stats): boolean => (stat.isDirectory() ? (stat.mode & 0o005) === 0o005 : (stat.mode & 0o004) === 0o004);

/** A copied directory's mode: the original's, and always the owner's to change (a 0555 directory is kept up to date too). */
const dirMode = (stat: Stats): number => (stat.mode & 0o7777) | 0o700;

/** The copy of one directory (`source`: /etc, or where /usr/local/etc's files are) as everyone may read it. */
class SystemCopy {
  /** The copy: `${parent}${source}`. */
  readonly path: string;
  /** The source's directories whose entries must be looked at again. */
  readonly #dirty: Set<string>;
  readonly #watchers = new Map<string, FSWatcher>();
  /** What each copied file was copied from (size, mtime, mode, inode): a file whose stat is the same is not copied again. */
  readonly #copied = new Map<string, string>();
  /** No watch could be set (the inotify limit): every start looks at all of the source. */
  #unwatched = false;
  /** A resync scheduled after a change (so running sandboxes lose a file made private at once, not at the next start). */
  #soon: NodeJS.Timeout | null = null;

  constructor(
    readonly source: string,
    parent: string,
  ) {
    this.path = join(parent, source);
    this.#dirty = new Set([source]);
    // The directories on the way to the copy (`usr/local`), the owner's only as the parent is.
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
  }

  /** The copy, brought up to date with what changed in its source. */
  current(): string {
    // No watch on the source itself (none left, or it was gone or private at the last look): looked at again.
    if (this.#unwatched || !this.#watchers.has(this.source)) this.#dirty.add(this.source);
    if (this.#dirty.size === 0) return this.path;
    const dirs = [...this.#dirty].sort();
    this.#dirty.clear();
    // A directory inside another one synced here is synced with it.
    for (const dir of dirs.filter((dir) => !dirs.some((other) => other !== dir && dir.startsWith(`${other}/`))))
      this.#sync(dir, dir === this.source || this.#unwatched);
    // The source gone or made private: an empty copy, so that what is bound there shows nothing of it.
    if (!lstatSync(this.path, { throwIfNoEntry: false })) mkdirSync(this.path, { mode: 0o755 });
    return this.path;
  }

  /**
   * The copy of the source's `dir` made to hold what others may read there now; its subdirectories too when `deep` (else
   * only new ones: the others have watches of their own). `fresh`: its copy was just made, empty.
   */
  #sync(dir: string, deep: boolean, fresh = false): void {
    const target = this.#target(dir);
    const stat = lstatSync(dir, { throwIfNoEntry: false });
    if (!stat?.isDirectory() || !everyone(stat)) {
      // Gone or made private since: its copy goes (its parent's sync, told of the same change, agrees).
      this.#drop(dir, true);
      return;
    }
    if (!fresh && !lstatSync(target, { throwIfNoEntry: false })?.isDirectory()) {
      rmSync(target, { recursive: true, force: true });
      mkdirSync(target);
      fresh = true;
    }
    chmodSync(target, dirMode(stat));
    this.#watch(dir);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      // Removed (or made private) between the look above and this read: as gone.
      this.#drop(dir, true);
      return;
    }
    if (!fresh) {
      const there = new Set(names);
      for (const name of readdirSync(target)) if (!there.has(name)) this.#drop(join(dir, name), true);
    }
    for (const name of names) {
      const source = join(dir, name);
      const entry = lstatSync(source, { throwIfNoEntry: false });
      if (!entry) continue;
      const copy = join(target, name);
      const had = fresh ? undefined : lstatSync(copy, { throwIfNoEntry: false });
      if (entry.isSymbolicLink()) {
        const link = readlinkSync(source);
        if (had?.isSymbolicLink() && readlinkSync(copy) === link) continue;
        if (had) this.#drop(source, had.isDirectory());
        symlinkSync(link, copy);
      } else if (!everyone(entry) || !(entry.isFile() || entry.isDirectory())) {
        // What others may not read, and what is no file (a socket, a pipe, a device), is not in the copy.
        if (had) this.#drop(source, had.isDirectory());
      } else if (entry.isDirectory()) {
        if (had?.isDirectory()) {
          if (deep) this.#sync(source, true);
          else chmodSync(copy, dirMode(entry));
          continue;
        }
        if (had) this.#drop(source, false);
        mkdirSync(copy);
        this.#sync(source, true, true);
      } else {
        const signature = `${entry.size}:${entry.mtimeMs}:${entry.mode}:${entry.ino}`;
        if (had?.isFile() && this.#copied.get(source) === signature) continue;
        if (had?.isDirectory()) this.#drop(source, true);
        // Copied (its mode with it) under a private name, then renamed: a sandbox never reads half a file.
        const draft = join(target, `.${name}.spool-${process.pid}`);
        try {
          copyFileSync(source, draft);
        } catch {
          // Gone (or unreadable) since it was listed: not in the copy; its directory's watch says when it is back.
          rmSync(draft, { force: true });
          if (had) this.#drop(source, false);
          continue;
        }
        renameSync(draft, copy);
        this.#copied.set(source, signature);
      }
    }
  }

  /** Where the source's `path` is in the copy. */
  #target(path: string): string {
    return join(this.path, path.slice(this.source.length));
  }

  /** Takes the source's `path` out of the copy; a directory (`tree`) with what is under it, and its watches. */
  #drop(path: string, tree: boolean): void {
    rmSync(this.#target(path), { recursive: true, force: true });
    this.#copied.delete(path);
    if (!tree) return;
    for (const [dir, watcher] of this.#watchers) {
      if (dir === path || dir.startsWith(`${path}/`)) {
        watcher.close();
        this.#watchers.delete(dir);
      }
    }
    for (const file of this.#copied.keys()) if (file.startsWith(`${path}/`)) this.#copied.delete(file);
  }

  #watch(dir: string): void {
    if (this.#watchers.has(dir) || this.#unwatched) return;
    try {
      const watcher = watch(dir, { persistent: false }, () => {
        this.#dirty.add(dir);
        this.#soon ??= setTimeout(() => {
          this.#soon = null;
          try {
            this.current();
          } catch {
            // What changed under the sync (a directory removed mid-way): the whole copy is looked at again at the next
            // start, which says what fails; a timer's throw would end the runner.
            this.#dirty.add(this.source);
          }
        }, 20).unref();
      });
      // A directory removed or made unreadable: its parent's watch tells, and the next sync looks again.
      watcher.on("error", () => {
        watcher.close();
        this.#watchers.delete(dir);
        this.#dirty.add(dir);
      });
      this.#watchers.set(dir, watcher);
    } catch {
      // No watch left (fs.inotify.max_user_watches): every start looks at all of the source instead.
      this.#unwatched = true;
      for (const watcher of this.#watchers.values()) watcher.close();
      this.#watchers.clear();
    }
  }

  /** Stops following the source and removes the copy. */
  remove(): void {
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    if (this.#soon) clearTimeout(this.#soon);
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** A tmpfs's magic number (statfs f_type). */
const TMPFS = 0x01021994;

/** Where the copy goes: a tmpfs of this user's ($XDG_RUNTIME_DIR) or the machine's (/dev/shm), else the temporary directory. */
function copyBase(): string {
  for (const dir of [process.env.XDG_RUNTIME_DIR, "/dev/shm"]) {
    if (!dir) continue;
    try {
      if (statfsSync(dir).type === TMPFS) {
        // Writable by this user: a directory of its own is made there.
        const probe = mkdtempSync(join(dir, `${PREFIX}probe-`));
        rmSync(probe, { recursive: true, force: true });
        return dir;
      }
    } catch {
      // Not there, or not this user's to write: the next.
    }
  }
  return tmpdir();
}

/** The copies a process that was killed left behind in `base` (its pid no longer runs): removed. */
function removeLeftovers(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^spool-etc-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    const path = join(base, name);
    // Only this user's own: another user's copy is theirs to remove.
    if (lstatSync(path, { throwIfNoEntry: false })?.uid === process.getuid?.()) rmSync(path, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** This process's directory of copies, made at the first call (leftovers of killed processes removed first), removed at exit. */
let parent: string | null = null;
function copiesDir(): string {
  if (parent) return parent;
  const base = copyBase();
  removeLeftovers(base);
  const made = mkdtempSync(join(base, `${PREFIX}${process.pid}-`));
  process.once("exit", () => rmSync(made, { recursive: true, force: true }));
  parent = made;
  return made;
}

/**
 * Where the files of `path` (/usr/local/etc) are, when a sandbox would show them as they are: its real path, a directory
 * in a system directory bound as it is (not /etc, whose copy has them); else null (none, or a link leading out of the view).
 */
export function copiedSource(path: string): string | null {
  const real = localRealDir(path);
  return real !== null && inSystem(real) && !within(real, ETC) ? real : null;
}

/** A directory of the sandbox's that is a copy: the sandbox's `path` shows `copy`. */
export interface CopiedDir {
  path: string;
  copy: string;
}

const copies = new Map<string, SystemCopy>();

/**
 * This process's copies of /etc and /usr/local/etc (where its files are) as every user may read them, up to date, each
 * with where it is bound; made at the first call (and /usr/local/etc's at the first that finds it).
 */
export function systemCopies(): CopiedDir[] {
  const local = copiedSource(LOCAL_ETC);
  const wanted = local ? [ETC, local] : [ETC];
  // /usr/local/etc gone, or now a link elsewhere: its old copy goes.
  for (const [source, copy] of copies) {
    if (!wanted.includes(source)) {
      copy.remove();
      copies.delete(source);
    }
  }
  return wanted.map((source) => {
    let copy = copies.get(source);
    if (!copy) copies.set(source, (copy = new SystemCopy(source, copiesDir())));
    return { path: source, copy: copy.current() };
  });
}

/** Where this process's copy of `source` is, as it stands (not brought up to date); null when it has none. */
export function copyOf(source: string): string | null {
  return copies.get(source)?.path ?? null;
}
