import { type Dirent, existsSync, lstatSync, readdirSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join, posix, relative } from "node:path";
import { bindable, type GitReader, gitdirOf, gitReader, type Named, namedByConfig } from "./git-config.js";
import { inSystem, realOrPlanned, within } from "./view.js";

export type { Named };

/*
 * A sandboxed command's project root as the runners judge it: what a writable one holds that programs outside the
 * sandbox run (bound read-only inside it), the homes no root may be or hold, and the messages a refusal gives. The
 * local runner (bwrap), the SSH runner's remote script and a container on this machine's engine apply the same rules.
 */

/**
 * The files and directories under a home that a login (sshd, a login or interactive shell, a desktop session) runs or
 * trusts: a workspace-write command must not write them (SPEC §7 "Sandbox modes"), so those present in the workspace
 * are bound read-only inside it.
 */
export const LOGIN_FILES = [
  ".ssh",
  ".bashrc",
  ".bash_profile",
  ".bash_login",
  ".bash_logout",
  ".profile",
  ".zshrc",
  ".zprofile",
  ".zshenv",
  ".zlogin",
  ".config/autostart",
  ".config/systemd",
] as const;

/**
 * What a writable workspace holds that programs outside the sandbox run or trust, bound read-only inside it: a login's
 * files (`LOGIN_FILES`, where the project has them) and git's own directories. Git runs what its config names
 * (core.fsmonitor, core.hooksPath, filters, aliases) and its hooks whenever the person runs git there, a shell prompt's
 * `git status` included, and none of it shows in a diff; a `commondir` or `gitdir` file can point it at a directory the
 * command made. So every `.git` is read-only as a whole (a command that commits runs in full): the root's, and those
 * below it (`GIT_SEARCH`: a submodule's, whose `.git` file git follows from the root's `git status`, a checkout inside
 * the project), and every other git directory (a bare repository's, a worktree's). Any other the command makes or
 * leaves, where there was none, is made unknown to git once it has ended (runners/new-repos.ts).
 */
export const WORKSPACE_PROTECTED = [...LOGIN_FILES, ".git"] as const;

/**
 * How much of the project the search for git's directories reads at most (`node_modules` is not searched, nor what it
 * finds): a command's start waits for it, and for the look at its end (runners/new-repos.ts). At the start the first
 * `atOnce` entries are read synchronously, the rest a directory at a time (the event loop of a server hosting an
 * embedded runner is held ~60 ms at most). Quiet, this checkout (~2,200 entries outside node_modules) takes 5-15 ms at
 * the start and ~20 ms at the end; /usr, stopped at 100,000 of its 148,000 entries, ~600 ms each (all synchronous:
 * 215-315 ms, all a directory at a time: 26-43 ms for this checkout). Past it, the search says it is not complete.
 */
export const GIT_SEARCH = { entries: 100_000, atOnce: 20_000 } as const;

/**
 * The paths of `workspace` (a real path) to bind read-only now: the `WORKSPACE_PROTECTED` ones it has (each where it
 * leads when that is inside the workspace), every git directory found in it (`gitDirectories`), and what a `.git`
 * file points to inside it; `complete`: the search read all of the project. A message when one cannot be protected:
 * a `.git` that is a symbolic link (the link itself would stay writable).
 */
export async function protectedIn(workspace: string, reader: GitReader = gitReader(undefined, {})): Promise<Protected | string> {
  const paths = WORKSPACE_PROTECTED.flatMap((name) => (existsSync(join(workspace, name)) ? [realOrPlanned(join(workspace, name))] : []));
  const found = await gitDirectories(workspace, reader);
  if (typeof found === "string") return found;
  paths.push(...found.paths, ...found.named.filter(bindable).map((n) => n.real));
  const inside = [...new Set(paths.filter((path) => within(path, workspace)))];
  return {
    // A path inside another one bound read-only is read-only already (and Docker refuses a mount point given twice).
    paths: inside.filter((path) => !inside.some((other) => other !== path && within(path, other))),
    named: found.named.filter((n) => within(n.path, workspace)),
    complete: found.complete,
  };
}

/** What a project that is not writable keeps: nothing more. */
export const UNPROTECTED: Protected = { paths: [], named: [], complete: true };

/** What a writable project keeps read-only (`paths`), what its git configs name (`named`), whether the search read all of it. */
export interface Protected {
  paths: string[];
  named: Named[];
  complete: boolean;
}

/** How many git directories and `.git`s the SSH runner's remote search gives at most: past it, it is not complete. */
export const REMOTE_GIT_LINES = 2048;

/** `isgit DIR`: whether DIR is a git directory (as isGitDirectory), in the remote shell. */
export const REMOTE_IS_GIT_DIR = `isgit() { { [ -e "$1/HEAD" ] || [ -L "$1/HEAD" ]; } && [ ! -d "$1/HEAD" ] && { [ -e "$1/objects" ] || [ -e "$1/refs" ] || [ -e "$1/commondir" ] || [ -L "$1/objects" ] || [ -L "$1/refs" ]; }; }`;

/**
 * The search as the SSH runner's remote shell runs it in "$W": each git directory (a HEAD, not a directory, beside
 * objects, refs or a commondir) and each `.git` below the root, one a line, `node_modules` aside. Unlike the local
 * search, it does not follow a config's core.hooksPath or includes.
 */
export const REMOTE_GIT_SEARCH = `${REMOTE_IS_GIT_DIR}; find "$W" -mindepth 1 -name node_modules -prune -o -name .git -print -prune -o ! -type d -name HEAD -print 2>/dev/null | while IFS= read -r g; do case "$g" in */HEAD) g=\${g%/HEAD}; [ "$g" != "$W" ] && isgit "$g" || continue ;; esac; printf '%s\\n' "$g"; done | head -n ${REMOTE_GIT_LINES}`;

/** Why a workspace-write command is refused when a `.git` of its project is a symbolic link (no double quote: the SSH script prints it). */
export const gitLinkMessage = (path: string) =>
  `${path} is a symbolic link: git would follow it outside the sandbox, and the link itself cannot be made read-only; make it the directory (or the gitdir: file) itself`;

/**
 * Whether a directory with these entries is a git directory to git (its is_git_directory): a HEAD (a file, a link to a
 * ref; any other kind but a directory, which git would still try to read) beside objects, refs or a commondir naming
 * them elsewhere. A `.git` directory, a bare repository, a
 * worktree's or a submodule's git directory alike.
 */
export const isGitDirectory = (entries: readonly Dirent[]): boolean =>
  entries.some((e) => e.name === "HEAD" && !e.isDirectory()) && entries.some((e) => GIT_PARTS.has(e.name));

const GIT_PARTS = new Set(["objects", "refs", "commondir"]);

/** Why a workspace-write command is refused when its project root is itself a git directory (no double quote: the SSH script prints it). */
export const rootGitMessage = (root: string) =>
  `the project root ${root} is itself a git directory (a bare repository): a command could change what git runs there; make its work tree the project root`;

/**
 * Every git directory in `workspace` and every `.git` (with the directory a `.git` file names, and the hooks directory
 * and included files a git directory's config names inside the project), not below one another (GIT_SEARCH;
 * `node_modules` aside); a message for a `.git` that is a link, or a root that is a git directory. A directory that
 * cannot be read makes the search incomplete.
 */
async function gitDirectories(workspace: string, reader: GitReader): Promise<Protected | string> {
  const found: string[] = [];
  const named: Named[] = [];
  let read = 0;
  let complete = true;
  const queue = [workspace];
  for (let dir = queue.shift(); dir !== undefined; dir = queue.shift()) {
    let entries: Dirent[];
    try {
      // The first entries at once (quick for most projects); past them a directory at a time, so that a server hosting
      // an embedded runner goes on meanwhile.
      entries = read < GIT_SEARCH.atOnce ? readdirSync(dir, { withFileTypes: true }) : await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") complete = false;
      continue;
    }
    read += entries.length;
    if (read > GIT_SEARCH.entries) return { paths: found, named, complete: false };
    if (isGitDirectory(entries)) {
      if (dir === workspace) return rootGitMessage(workspace);
      found.push(dir);
      named.push(...namedByConfig(dir, dir, reader));
      continue;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.name === ".git") {
        if (entry.isSymbolicLink()) return gitLinkMessage(path);
        found.push(path);
        if (entry.isFile())
          for (const gitDir of gitdirOf(path)) {
            found.push(gitDir);
            named.push(...namedByConfig(gitDir, dir, reader));
          }
        // Git reads a `.git` directory's config only when it is a repository (a HEAD there).
        else if (entry.isDirectory() && lstatSync(join(path, "HEAD"), { throwIfNoEntry: false })?.isDirectory() === false)
          named.push(...namedByConfig(path, dir, reader));
      } else if (entry.isDirectory() && entry.name !== "node_modules") queue.push(path);
    }
  }
  return { paths: found, named, complete };
}

/**
 * Why the configured paths of a view (real paths) may not be bound, or null: one that is a home or holds one would show
 * all of it; one in a system directory is in view already (/etc and /usr/local/etc as every user may read them: bound
 * as it is, their root-only files would come with it); a writable one holding what a login runs (`LOGIN_FILES` of
 * `homes`) could plant it. The local and the Docker runner refuse such a command alike.
 */
export function configuredPathsProblem(readOnly: readonly string[], writable: readonly string[], homes: readonly string[]): string | null {
  for (const path of [...readOnly, ...writable]) {
    const holds = homes.find((h) => within(h, path));
    if (holds) return `${path} is or holds the home directory ${holds}; name the files the command needs in sandboxView.read instead`;
    if (path === "/" || inSystem(path))
      return `${path} is a system directory: bound as it is, its root-only files would come with it (a sandbox shows /etc and /usr/local/etc only as every user may read them); it cannot be added`;
  }
  for (const path of writable) {
    const login = homes.flatMap((h) => LOGIN_FILES.map((name) => join(h, name))).find((file) => within(file, path) || within(path, file));
    if (login) return `${path} is writable and holds ${login}, which a login runs or trusts outside the sandbox; name another path in sandboxView.write`;
  }
  return null;
}

/**
 * Why a sandboxed command is refused when the workspace is the runner user's home or holds it; `home` names it. In
 * workspace-write it could write what a login runs; in read-only it would read all of the home (its private home is
 * then the project itself, the MCP clients' configs, ~/.pgpass and saved tokens with it).
 */
export function homeWorkspaceMessage(workspace: string, home: string, mode: "read-only" | "workspace-write" = "workspace-write", own = true): string {
  const why =
    mode === "workspace-write"
      ? "where a command could write what a login runs outside the sandbox (~/.ssh, ~/.profile, ~/.bashrc)"
      : own
        ? "all of which a command would read (a client's config holding a token, ~/.pgpass, a saved token), its private home being the project itself"
        : "all of which a command would read (its keys, a client's config holding a token, ~/.pgpass, a saved token)";
  const whose = own ? "the runner user's home directory" : "the home directory of a user who logs in here,";
  return `${mode} is refused with ${workspace} as the project root: it is or holds ${whose} ${home}, ${why}; start the runner with --root DIR naming a project directory (below the home), or choose a project directory as the project root`;
}

/**
 * Why a sandboxed command may not have `root` as its project root on this machine: it is or holds the runner user's
 * home (`homes`) or the home of a user who logs in (`userHomes`, view.ts loginHomes); null when it may. The local
 * runner binds the root, and a container on this machine's engine mounts it: either way the command would see it all.
 */
export function homeRootProblem(root: string, mode: "read-only" | "workspace-write", homes: readonly string[], userHomes: readonly string[]): string | null {
  const own = homes.find((home) => within(home, root));
  if (own) return homeWorkspaceMessage(root, own, mode);
  const user = userHomes.find((home) => within(home, root));
  return user ? homeWorkspaceMessage(root, user, mode, false) : null;
}

/**
 * A container's mounts of the project root `real` (at `target`) on this machine's engine, for a sandboxed command:
 * refused (a message) when the root is or holds a home (`homeRootProblem`); else the root (read-only for read-only
 * work) and, over a writable one, `WORKSPACE_PROTECTED` read-only at their places, as the local runner binds them.
 */
export async function projectMounts(
  real: string,
  target: string,
  mode: "read-only" | "workspace-write",
  homes: readonly string[],
  userHomes: readonly string[],
  reader?: GitReader,
): Promise<{ mounts: { source: string; target: string; readOnly: boolean }[]; named: Named[]; complete: boolean } | string> {
  const refused = homeRootProblem(real, mode, homes, userHomes);
  if (refused) return refused;
  const readOnly = mode === "read-only";
  const inside = readOnly ? UNPROTECTED : await protectedIn(real, reader);
  if (typeof inside === "string") return inside;
  const kept = inside.paths.map((path) => ({ source: path, target: posix.join(target, relative(real, path)), readOnly: true }));
  return { mounts: [{ source: real, target, readOnly }, ...kept], named: inside.named, complete: inside.complete };
}

/**
 * Why a command is refused when its project root (as the runner resolves it now) is not the directory the proposal
 * named: a link on its path (made since, by a command of an enclosing project, say) would send the whole workspace
 * where it leads (~/.config, ~/.ssh), while every client showed the root's path. Null when it is that directory.
 */
export function rootMovedMessage(root: string, real: string): string | null {
  const given = root.length > 1 ? root.replace(/\/+$/, "") : root;
  if (given === real) return null;
  return `the project root ${given} resolves to ${real} (a symbolic link on its path, made or changed since the proposal?); nothing was run — a project root must be the directory itself, not a link to one`;
}

/** Why a command is refused when its directory (as the runner resolves it now) is not where the proposal said. */
export function cwdOutsideMessage(cwd: string, workspace: string): string {
  return `the command's directory resolves to ${cwd}, outside the project root ${workspace} (a symbolic link changed since the proposal?); nothing was run`;
}
