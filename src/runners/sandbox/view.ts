import { closeSync, constants, existsSync, fstatSync, lstatSync, openSync, readFileSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, isAbsolute, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { accountHome, realOrPlanned, within } from "../../paths.js";

/*
 * What a read-only or workspace-write command sees (SPEC §7 "Sandbox modes", "What a command sees"): a view built from
 * what the command needs, never from what is known to be secret. Secrets live where Spool cannot know (an MCP
 * client's config holding a token, ~/.pgpass, a token saved in the home, a Spool home started later or under another
 * HOME), so the sandbox starts empty and gets:
 *
 * - the system directories, read-only (`SYSTEM_DIRS`; /etc and /usr/local/etc as every user of the machine may read
 *   them: etc-view.ts);
 * - the project root (writable in workspace-write);
 * - a private /tmp and /var/tmp, and a private, empty home at $HOME;
 * - the toolchains the runner's PATH names: their install roots, read-only (`toolchainRoots`);
 * - the paths the configuration adds (`sandboxView.read` / `sandboxView.write`; `~/x` is the runner's home's x).
 *
 * Each of these is a fact every client shows before the decision (src/protocol/views.ts `SandboxView`). What is
 * known to be secret (the server's home, token and database, a runner's own state and SSH key, the homes the
 * registry records) is used to refuse a command whose view would hold it (`viewRefusal`), never to mount over it.
 */

/**
 * The system's directories a command sees, read-only: programs and libraries (/usr, and /bin, /sbin and /lib* as the
 * machine has them: links into /usr where /usr is merged), /etc (as every user may read it) and /sys (the kernel's
 * view of devices and cgroups, which tools size themselves by). Not /home, /root, /srv, /mnt, /media, /opt, /var/lib,
 * /boot or /tmp: they hold people's and services' files; a toolchain installed under /opt comes in through PATH.
 */
export const SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys"] as const;

/**
 * Where locally installed software keeps its configuration (and keys): given, as /etc is, as every user may read it
 * (etc-view.ts), not as it is in /usr.
 */
export const LOCAL_ETC = "/usr/local/etc";

// The path checks the view shares with the home's (src/home/in-project.ts), for this folder's and the backends' use.
export { realOrPlanned, within };

/** Whether `path` lies in a system directory (so in every view already). */
export const inSystem = (path: string): boolean => SYSTEM_DIRS.some((dir) => within(path, dir));

/**
 * The bwrap arguments of the system directories on this machine, computed once: a directory bound read-only, one
 * that is a link (/bin → usr/bin) made the same link, one the machine lacks left out. /etc is the caller's, and
 * /usr/local/etc is bound again over /usr's by it (etc-view.ts gives their copies).
 */
let systemArgsOnce: string[] | null = null;
export function systemArgs(): string[] {
  if (systemArgsOnce) return systemArgsOnce;
  const args: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    if (dir === "/etc") continue;
    const stat = lstatSync(dir, { throwIfNoEntry: false });
    if (stat?.isSymbolicLink()) args.push("--symlink", readlinkSync(dir), dir);
    else if (stat?.isDirectory()) args.push("--ro-bind", dir, dir);
  }
  systemArgsOnce = args;
  return args;
}

/** What the rules need to know of the machine the command runs on (the runner's, or an SSH host's as its probe told). */
export interface ToolchainMachine {
  /** The real path of `path` when it is a directory there, else null. */
  realDir(path: string): string | null;
  /** Its home directories (real paths): a view never holds one, and under one only a table's root or the PATH directory itself. */
  homes: readonly string[];
}

/**
 * Well-known toolchain layouts, matched on a PATH directory's real path: the install roots that directory needs. A root
 * is never more than the toolchain: `~/.cargo/bin` needs the binaries and rustup's toolchains, not `~/.cargo`
 * (credentials.toml); `~/.local/bin` matches none and stays alone (never `~/.local/share` or `~/.local/state`).
 */
export const TOOLCHAIN_LAYOUTS: readonly { name: string; pattern: RegExp; roots: (m: RegExpExecArray) => string[] }[] = [
  // rustup's proxies (cargo, rustc) and the toolchains they run, RUSTUP_HOME's default beside CARGO_HOME.
  { name: "cargo", pattern: /^(.*)\/\.cargo\/bin$/, roots: (m) => [`${m[1]}/.cargo/bin`, `${m[1]}/.rustup`] },
  // pyenv, rbenv, nodenv, asdf: shims that run the versions kept in their root (and its plugins' shims).
  { name: "pyenv", pattern: /^(.*\/\.pyenv)\/(?:shims|bin|plugins\/[^/]+\/(?:shims|bin))$/, roots: (m) => [m[1]!] },
  { name: "rbenv", pattern: /^(.*\/\.rbenv)\/(?:shims|bin)$/, roots: (m) => [m[1]!] },
  { name: "nodenv", pattern: /^(.*\/\.nodenv)\/(?:shims|bin)$/, roots: (m) => [m[1]!] },
  { name: "asdf", pattern: /^(.*\/\.asdf)\/(?:shims|bin)$/, roots: (m) => [m[1]!] },
  // nvm, sdkman, Go's own downloads (golang.org/dl): one version's install root.
  { name: "nvm", pattern: /^(.*\/\.nvm\/versions\/node\/[^/]+)\/bin$/, roots: (m) => [m[1]!] },
  { name: "sdkman", pattern: /^(.*\/\.sdkman\/candidates\/[^/]+\/[^/]+)\/bin$/, roots: (m) => [m[1]!] },
  { name: "go", pattern: /^(.*\/sdk\/go[^/]*)\/bin$/, roots: (m) => [m[1]!] },
  // volta's shims run the tools it keeps in its root.
  { name: "volta", pattern: /^(.*\/\.volta)\/bin$/, roots: (m) => [m[1]!] },
];

const depth = (path: string): number => path.split("/").filter(Boolean).length;

/**
 * The install roots the PATH directories in `entries` need, real paths, in PATH's order (SPEC §7 "What a command
 * sees"). For each absolute directory there (a relative entry, one that is missing or not a directory is left out):
 *
 * 1. in a system directory: nothing (it is in view already);
 * 2. a well-known layout (`TOOLCHAIN_LAYOUTS`): its roots, those that exist;
 * 3. under a home: the directory itself, alone;
 * 4. elsewhere: `PREFIX/bin` (or `sbin`) is an install prefix's (`/opt/node/bin`: `/opt/node`, where npm's links lead)
 *    when PREFIX is not a top-level directory; anything else is the directory itself.
 *
 * A root that is `/`, a top-level directory (`/opt`, `/home`), a home or holds one is never bound (such a PATH entry
 * names no toolchain); roots inside another root are left out.
 */
export function toolchainRoots(entries: readonly string[], machine: ToolchainMachine): string[] {
  const roots: string[] = [];
  const underHome = (path: string) => machine.homes.some((home) => within(path, home) && path !== home);
  const bindable = (root: string) => depth(root) >= 2 && !inSystem(root) && !machine.homes.some((home) => within(home, root));
  for (const entry of entries) {
    if (!isAbsolute(entry)) continue;
    const real = machine.realDir(normalize(entry));
    if (real === null || inSystem(real)) continue;
    const layout = TOOLCHAIN_LAYOUTS.map((l) => ({ l, m: l.pattern.exec(real) })).find(({ m }) => m !== null);
    let wanted: string[];
    if (layout) wanted = layout.l.roots(layout.m!).flatMap((root) => machine.realDir(root) ?? []);
    else if (underHome(real)) wanted = [real];
    else wanted = (basename(real) === "bin" || basename(real) === "sbin") && depth(dirname(real)) >= 2 ? [dirname(real)] : [real];
    for (const root of wanted) if (bindable(root) && !roots.includes(root)) roots.push(root);
  }
  return roots.filter((root) => !roots.some((other) => other !== root && within(root, other)));
}

/** A directory's real path on this machine, or null when it is not a directory. */
export function localRealDir(path: string): string | null {
  try {
    const real = realpathSync(path);
    return statSync(real).isDirectory() ? real : null;
  } catch {
    return null;
  }
}

/**
 * The home directories of this machine's users who log in (real paths): /root, /home, and every account's in the
 * password file whose shell is no `nologin` or `false` (a service's home, /var/www say, is no one's login). A project
 * root that is one, or holds one, would show (or let a command write) that user's keys, tokens and login files.
 */
export function loginHomes(passwd = "/etc/passwd"): string[] {
  const homes = new Set<string>(["/root", "/home"]);
  let text = "";
  try {
    text = readFileSync(passwd, "utf8");
  } catch {
    return [...homes];
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    const [home, shell] = [fields[5] ?? "", fields[6] ?? ""];
    if (!home.startsWith("/") || /(nologin|false)$/.test(shell.trim())) continue;
    const real = localRealDir(home);
    if (real && real !== "/" && !inSystem(real)) homes.add(real);
  }
  return [...homes];
}

/** The runner user's home directories, as real paths: the account's and `home` ($HOME) where it names another. */
export function runnerHomes(home: string | undefined): string[] {
  const homes = new Set<string>();
  for (const path of [accountHome(), home]) {
    if (!path) continue;
    try {
      homes.add(realpathSync(path));
    } catch {
      // A home that does not exist holds nothing a login would run.
    }
  }
  return [...homes];
}

/** This machine's home directories (real paths): the runner account's, $HOME, /root and /home (every user's). */
export function localHomes(home: string | undefined): string[] {
  const homes = new Set<string>(["/root", "/home"]);
  for (const path of [accountHome(), home]) {
    const real = path ? localRealDir(path) : null;
    if (real && real !== "/") homes.add(real);
  }
  return [...homes];
}

/**
 * The toolchains a local runner's commands see: the roots its PATH names, and node's own (the egress forwarder runs
 * with the runner's node inside the sandbox) when it is elsewhere.
 */
export function localToolchains(environ: { PATH?: string | undefined; HOME?: string | undefined }): string[] {
  const machine = { realDir: localRealDir, homes: localHomes(environ.HOME) };
  return toolchainRoots([...(environ.PATH ?? "").split(":"), dirname(process.execPath)], machine);
}

/** Where a command's private home is: $HOME, unless that is no place for one (relative, `/`, a system directory); then none. */
export function privateHome(home: string | undefined): string | null {
  if (!home || !isAbsolute(home)) return null;
  const path = normalize(home).replace(/\/+$/, "");
  return path === "" || inSystem(path) ? null : path;
}

/** The system directories this machine has (as `systemArgs` binds them): a runner's `view.system`. */
export function localSystem(): string[] {
  return SYSTEM_DIRS.filter((dir) => lstatSync(dir, { throwIfNoEntry: false }) !== undefined);
}

/** `~/x` as `home`'s x; an absolute path normalized. */
export function expandHome(path: string, home: string): string {
  return path.startsWith("~/") ? join(home, path.slice(2)) : normalize(path);
}

/** The paths a command sees beyond the system, its /tmp and its project, as the runner builds them. */
export interface ViewPaths {
  /** The private home's path ($HOME); null: none (an image's own). */
  home: string | null;
  /** Read-only: the toolchains, then the configured read paths (absolute). */
  readOnly: readonly string[];
  /** Writable in workspace-write (read-only in read-only mode): the configured write paths (absolute). */
  writable: readonly string[];
}

/** Linux's O_PATH: a descriptor that names a file without opening it (no read, no side effect on a device or a pipe). */
const O_PATH = 0o10000000;

/**
 * What is at `path` (a real path the start has just judged) now: its device and inode as `stat -c %d:%i` prints them,
 * read through a descriptor of the file itself (not a link's target); null when nothing is there. Throws when what is
 * there is not at that path any more (a link now, or a directory on the way swapped for one): bound by its path, it
 * would bring in where the link leads. The sandbox compares what it mounted with this (setup.ts `BoundPaths`).
 */
export function pathIdentity(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, O_PATH | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw error;
  }
  try {
    const stats = fstatSync(fd, { bigint: true });
    const at = readlinkSync(`/proc/self/fd/${fd}`);
    if (stats.isSymbolicLink() || at !== path)
      throw new Error(`${path} was replaced while it was checked (it is now ${stats.isSymbolicLink() ? "a link" : at}); nothing was run`);
    return `${stats.dev}:${stats.ino}`;
  } finally {
    closeSync(fd);
  }
}

/** stat(1) by its absolute path, for the sandbox's check of what it mounted; null when the machine has none there. */
export function statProgram(): string | null {
  return ["/usr/bin/stat", "/bin/stat"].find((path) => statSync(path, { throwIfNoEntry: false })?.isFile()) ?? null;
}

/** A known secret that a view would hold, and where; null when it holds none. */
export interface ViewRefusal {
  secret: string;
  root: string;
}

/**
 * The first known secret (real or planned paths: the server's home, token and database, a runner's own state and
 * SSH key, a recorded home) that lies in one of `roots` (what the command would see, real paths), or that holds one
 * of them; null when none does. Checked, never mounted over: such a command is refused.
 */
export function viewRefusal(roots: readonly string[], secrets: readonly string[]): ViewRefusal | null {
  for (const secret of secrets) {
    const root = roots.find((root) => within(secret, root) || within(root, secret));
    if (root !== undefined) return { secret, root };
  }
  return null;
}

let code: string[] | null = null;

/**
 * Where the code Spool runs lies (real paths): its package (the directory above this file holding package.json),
 * the node_modules its dependencies load from, and the node binary. The server, its runners and the egress proxy
 * run it outside every sandbox, so a command that may write there becomes them at their next start (or at the
 * next lazy import): Spool installed in a project (`npm i -D`), or a project that is Spool's own checkout.
 */
export function spoolCode(): string[] {
  if (code) return code;
  const found = new Set<string>([realOrPlanned(process.execPath)]);
  let dir = dirname(fileURLToPath(import.meta.url));
  while (dir !== dirname(dir) && !existsSync(join(dir, "package.json"))) dir = dirname(dir);
  if (dir !== dirname(dir)) found.add(realOrPlanned(dir));
  try {
    // A dependency every start loads: the node_modules it resolves from (hoisted beside Spool in a project's install).
    const resolved = createRequire(import.meta.url).resolve("ws");
    const at = resolved.lastIndexOf("/node_modules/");
    if (at >= 0) found.add(realOrPlanned(resolved.slice(0, at + "/node_modules".length)));
  } catch {
    // bundled: nothing outside the package
  }
  code = [...found];
  return code;
}

/**
 * Why a sandboxed command may not start when a path it may write (its workspace in workspace-write, a configured
 * writable path, a container's writable mount) is or holds Spool's own code (`spoolCode`); null when none does.
 */
export function codeRefusal(writable: readonly string[], codePaths: readonly string[] = spoolCode()): string | null {
  for (const path of codePaths) {
    const root = writable.find((root) => within(path, root) || within(root, path));
    if (root !== undefined)
      return `the command could write ${path === root ? path : within(path, root) ? `${path} (in ${root})` : `${root} (in ${path})`}, which holds code Spool runs outside every sandbox (the server, its runners, the egress proxy): it could change what they run; nothing was run — run Spool from an install outside the project (npm install -g), or run the command read-only`;
  }
  return null;
}

/**
 * Why a container's mounts (`roots`, real paths; `writable` those mounted read-write) may not be made: one holds a
 * known secret, or makes Spool's code writable; null when neither.
 */
export function mountsProblem(roots: readonly string[], writable: readonly string[], secrets: readonly string[]): string | null {
  const refusal = viewRefusal(roots, secrets);
  return refusal ? viewRefusalMessage(refusal, "the container's mounts") : codeRefusal(writable);
}

/** What a person reads when a command is refused for a known secret in its view. */
export function viewRefusalMessage(refusal: ViewRefusal, what = "the command's view"): string {
  const where = refusal.secret === refusal.root ? "" : ` (through ${refusal.root})`;
  return `${what} would hold ${refusal.secret}${where}, which holds a credential (a Spool home, token file or database, or a runner's key); nothing was run — keep such files out of the project and the configured sandboxView paths`;
}
