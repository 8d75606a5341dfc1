import { createHash } from "node:crypto";
import {
  type Dirent,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { accountHome } from "../paths.js";

/*
 * Every Spool home, token file, database and socket of this user on this machine, and a runner's SSH key (SPEC §7
 * "What a command sees", issues 54 and 73): each Spool process records the paths it keeps its credentials and state
 * in, and every sandbox built here checks them: a command whose view (its project, a toolchain, a configured path)
 * would hold one is refused. Never a mount: a sandbox's view is built from what the command needs, so a home the
 * registry does not know (started later, under another HOME or registry) is out of it anyway, unless it lies in the
 * command's project or elsewhere in its view, where a server refuses to start (home/in-project.ts, home/views.ts).
 *
 * One small file per path, named by a digest of it, so that recording is idempotent and races with nothing; a path
 * whose directory no longer exists is forgotten when the registry is read (a removed test home). A path that is not
 * there now (a database's WAL, a stopped server's socket) stays recorded and is checked once it is; a home of a
 * stopped server stays too: its token works again when the server does.
 */

/** The registry's directory: $XDG_STATE_HOME/spool/state-paths (default ~/.local/state), or SPOOL_REGISTRY. */
export function registryDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SPOOL_REGISTRY) return resolve(env.SPOOL_REGISTRY);
  const state = env.XDG_STATE_HOME && isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : join(homedir(), ".local", "state");
  return join(state, "spool", "state-paths");
}

/**
 * Where the views of the sandboxed commands running now are recorded (views.ts), as secret as the registry (a command
 * whose view would hold either is refused). Not where HOME or XDG_STATE_HOME say: a server started under another HOME
 * must see the records of a runner started under this one, so in the user's home as the password database has it
 * (~/.local/state/spool/views); beside SPOOL_REGISTRY where that is set (a test run's own); where the user has no home
 * there, beside the registry.
 */
export function viewsDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SPOOL_REGISTRY) return `${resolve(env.SPOOL_REGISTRY)}.views`;
  const home = accountHome();
  return home && isAbsolute(home) && home !== "/" ? join(home, ".local", "state", "spool", "views") : `${registryDir(env)}.views`;
}

/**
 * Where a sandbox has a filesystem of its own (SPEC §7 "Sandbox modes"): a /dev with its few devices, its /proc, an
 * empty /run; nothing of the machine's under them is seen, so nothing there is a home's state. And /sys, the
 * kernel's. A path there is neither recorded nor checked: a token file named `/dev/null` once took /dev/null from
 * every sandbox of the machine (when recorded paths were covered), and would now refuse every command.
 */
const SANDBOX_OWN = ["/dev", "/proc", "/run", "/sys"];

/** The system's own directories: as a known secret, one would refuse every command. */
const SYSTEM_DIRS = new Set(
  "/ /bin /boot /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt /root /sbin /srv /tmp /usr /usr/bin /usr/lib /usr/local /usr/sbin /usr/share /var /var/lib /var/tmp".split(
    " ",
  ),
);

/** Whether `path` (absolute, normalized) may be a known secret: not a system directory, not where a sandbox has its own filesystem. */
export function coverablePath(path: string): boolean {
  return !SYSTEM_DIRS.has(path) && !SANDBOX_OWN.some((dir) => path === dir || path.startsWith(`${dir}/`));
}

/** What a home's state is: a directory, a regular file or a socket; never a device, a pipe or anything else. */
export function coverableKind(kind: Stats | Dirent): "dir" | "file" | null {
  return kind.isDirectory() ? "dir" : kind.isFile() || kind.isSocket() ? "file" : null;
}

const entryName = (path: string) => createHash("sha256").update(path).digest("hex").slice(0, 32);

/**
 * Records `paths` (made absolute) in the registry. Never throws: a home that cannot be recorded (a read-only home
 * directory) must not stop a server; the caller's own sandboxes check its own paths regardless.
 */
export function recordStatePaths(paths: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  const dir = registryDir(env);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const path of new Set(paths.map((p) => resolve(p)))) {
      if (!recordable(path)) continue;
      const file = join(dir, entryName(path));
      if (existsSync(file)) continue;
      // Written under a private name, then renamed: a reader never finds half a path.
      const draft = `${file}.${process.pid}.tmp`;
      writeFileSync(draft, path, { mode: 0o600 });
      renameSync(draft, file);
    }
  } catch {
    // not recorded: see above
  }
}

/** Whether `path` may be recorded: coverable where it is now (its real path and kind), or where it would be when not there. */
function recordable(path: string): boolean {
  if (!coverablePath(path)) return false;
  let real: string;
  try {
    real = realpathSync.native(path);
  } catch {
    return true;
  }
  const stat = statSync(real, { throwIfNoEntry: false });
  return coverablePath(real) && (stat === undefined || coverableKind(stat) !== null);
}

/**
 * The path each registry entry holds and its directory, by the entry's name, as this process read them. Safe to
 * keep: an entry's name is the digest of the path it holds (the same name is the same path in any registry), it is
 * written whole under that name (renamed into place) and never rewritten, and the registry is in no sandbox's view (a
 * command whose view would hold it is refused), so no sandboxed command can change what an entry says.
 */
const entryPaths = new Map<string, { path: string; parent: string } | null>();

/** What the registry records that exists now, as real paths: the files and directories a sandbox checks its view against. */
export interface RecordedState {
  files: string[];
  dirs: string[];
}

/**
 * One pass over the registry, for a sandbox's start: its entries grouped by their directory (a home's token,
 * database and socket share one), then per directory one realpath and one listing that says which recorded names
 * are there and what they are (a name that is a symbolic link is resolved where it leads: a home's database may be
 * a link to another disk): a home's eight paths cost one listing, not two existence checks, a realpath and a stat
 * each. Entries whose directory no longer exists are forgotten (a removed test home's token, database and socket;
 * the home itself stays recorded, as any path whose directory is there).
 *
 * Nothing about the paths is kept from one start to the next: a path that appears after a start is seen by the
 * next one, and a directory moved or replaced by a link is judged where it is now. (A listing kept by its
 * directory's mtime would go stale within a timestamp's granularity, a clock tick, and would not see an ancestor
 * renamed.) Only the entries' contents are kept (`entryPaths`).
 */
export function recordedState(env: NodeJS.ProcessEnv = process.env): RecordedState & { paths: string[] } {
  const dir = registryDir(env);
  const found: RecordedState & { paths: string[] } = { files: [], dirs: [], paths: [] };
  // The records of running commands' views, beside the registry.
  if (add(found, viewsDir(env))) found.paths.push(viewsDir(env));
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return found;
  }
  found.paths.push(dir);
  add(found, dir);
  for (const [parent, entries] of byDirectory(dir, names)) {
    const listed = listing(parent);
    if (listed === "gone") for (const entry of entries) forget(entry.file);
    else for (const entry of entries) look(found, listed, entry.path);
  }
  return found;
}

/** Passes asked for and not begun yet, by registry directory. */
const soon = new Map<string, Promise<RecordedState & { paths: string[] }>>();

/**
 * `recordedState` for a sandbox's start, shared by the starts that ask before it begins: one pass, on the event
 * loop's next turn (setImmediate), serves every start that asked until then, so commands started together (a
 * runner given 100 at once) cost a pass or two, not one each. As safe as a pass of one's own: it begins after each
 * start it serves asked for it, so it sees what was there when each asked, and a start asking once it has begun
 * waits for the next. What it gives is shared by those starts: not to be changed.
 */
export function recordedStateSoon(env: NodeJS.ProcessEnv = process.env): Promise<RecordedState & { paths: string[] }> {
  const dir = registryDir(env);
  let pass = soon.get(dir);
  if (!pass) {
    pass = new Promise((resolve) =>
      setImmediate(() => {
        soon.delete(dir);
        resolve(recordedState(env));
      }),
    );
    soon.set(dir, pass);
  }
  return pass;
}

/** The paths recorded that are there now, and the registry itself; those whose directory no longer exists are forgotten. */
export function recordedStatePaths(env: NodeJS.ProcessEnv = process.env): string[] {
  return recordedState(env).paths;
}

/** Adds `path` to what is found if `listed` (its directory) holds it. */
function look(found: RecordedState & { paths: string[] }, listed: Listing | "unlisted", path: string): void {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const kind = listed === "unlisted" ? "link" : listed.entries.get(name);
  if (kind === undefined || kind === "other") return;
  if (listed === "unlisted" || kind === "link") {
    if (!add(found, path)) return;
  } else {
    const real = `${listed.real === "/" ? "" : listed.real}/${name}`;
    if (!coverablePath(real)) return;
    (kind === "dir" ? found.dirs : found.files).push(real);
  }
  found.paths.push(path);
}

/** The registry's entries (their file, the path it holds) by the directory of the path. */
function byDirectory(dir: string, names: readonly string[]): Map<string, { file: string; path: string }[]> {
  const groups = new Map<string, { file: string; path: string }[]>();
  for (const name of names) {
    // Written under a private name and not yet renamed: not an entry yet.
    if (name.endsWith(".tmp")) continue;
    const file = `${dir}/${name}`;
    let entry = entryPaths.get(name);
    if (entry === undefined) {
      let path: string;
      try {
        path = readFileSync(file, "utf8");
      } catch {
        continue;
      }
      // Not a path to cover (a file put there by hand, a device recorded before they were refused): skipped, and not read again.
      entry = isAbsolute(path) && coverablePath(resolve(path)) ? { path, parent: dirname(path) } : null;
      entryPaths.set(name, entry);
    }
    if (entry === null) continue;
    const group = groups.get(entry.parent);
    if (group) group.push({ file, path: entry.path });
    else groups.set(entry.parent, [{ file, path: entry.path }]);
  }
  return groups;
}

type Kind = "file" | "dir" | "link" | "other";
type Listing = { real: string; entries: Map<string, Kind> };

/**
 * A directory's real path and what is in it, "gone" when it is not there (a component missing or not a
 * directory), "unlisted" when it is there but cannot be listed (then each entry is looked at alone).
 */
function listing(parent: string): Listing | "gone" | "unlisted" {
  try {
    const real = realpathSync.native(parent);
    const entries = new Map<string, Kind>();
    for (const entry of readdirSync(real, { withFileTypes: true })) {
      entries.set(entry.name, entry.isSymbolicLink() ? "link" : (coverableKind(entry) ?? "other"));
    }
    return { real, entries };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" || code === "ENOTDIR" ? "gone" : "unlisted";
  }
}

/**
 * Adds where `path` leads now, as a file or a directory; false when it leads nowhere (a dangling link, not there) or
 * to what no sandbox covers (a device, a system directory: `coverablePath`, `coverableKind`).
 */
function add(found: RecordedState, path: string): boolean {
  try {
    const real = realpathSync.native(path);
    const kind = coverableKind(statSync(real));
    if (kind === null || !coverablePath(real)) return false;
    (kind === "dir" ? found.dirs : found.files).push(real);
    return true;
  } catch {
    return false;
  }
}

function forget(file: string): void {
  entryPaths.delete(file.slice(file.lastIndexOf("/") + 1));
  try {
    unlinkSync(file);
  } catch {
    // forgotten by another reader meanwhile
  }
}
