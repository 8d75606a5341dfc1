import { existsSync } from "node:fs";
import { join, posix, relative } from "node:path";
import { inSystem, realOrPlanned, within } from "./view.js";

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
 * files (`LOGIN_FILES`, where the project has them) and git's own directory. Git runs what its config names (
 * core.fsmonitor, core.hooksPath, filters, aliases) and its hooks whenever the person runs git there, a shell prompt's
 * `git status` included, and none of it shows in a diff; a `commondir` or `gitdir` file can point it at a directory the
 * command made. So `.git` is read-only as a whole (a command that commits runs in full); one the command creates, in a
 * project that had none, is its own.
 */
export const WORKSPACE_PROTECTED = [...LOGIN_FILES, ".git"] as const;

/** The `WORKSPACE_PROTECTED` paths `workspace` (a real path) has now, each where it leads when that is inside the workspace. */
export function protectedIn(workspace: string): string[] {
  return WORKSPACE_PROTECTED.flatMap((name) => (existsSync(join(workspace, name)) ? [realOrPlanned(join(workspace, name))] : [])).filter((path) =>
    within(path, workspace),
  );
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
export function projectMounts(
  real: string,
  target: string,
  mode: "read-only" | "workspace-write",
  homes: readonly string[],
  userHomes: readonly string[],
): { source: string; target: string; readOnly: boolean }[] | string {
  const refused = homeRootProblem(real, mode, homes, userHomes);
  if (refused) return refused;
  const readOnly = mode === "read-only";
  const kept = readOnly ? [] : protectedIn(real).map((path) => ({ source: path, target: posix.join(target, relative(real, path)), readOnly: true }));
  return [{ source: real, target, readOnly }, ...kept];
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
