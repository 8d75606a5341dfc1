import { type Dirent, lstatSync, readlinkSync, realpathSync, renameSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import type { ExecResult, Execution } from "./backend.js";
import { runs } from "./sandbox/git-config.js";
import { realOrPlanned, within } from "./sandbox/view.js";
import { GIT_SEARCH, isGitDirectory, type Named } from "./sandbox/workspace.js";

/*
 * Git repositories a workspace-write command leaves in its project. Every git directory the project had when it
 * started is read-only inside the sandbox (sandbox/workspace.ts), but a command may make one where there was none:
 * `git init`, a `.git` or a bare repository written by hand, an old directory given a HEAD and a commondir, with a
 * config naming a program (core.fsmonitor, core.pager, a hook). The person's next git there, a shell prompt's
 * `git status` included, would run it outside any sandbox. Once the command has ended, with none of its processes
 * left, the runner looks at the project again: every git directory and `.git` file that was not read-only to the
 * command was writable to it, so each is made unknown to git — a git directory's HEAD renamed, a `.git` file renamed —
 * and a line at the end of the command's stderr says so.
 */

/** What a renamed HEAD or `.git` file is called: its name with this after it. */
export const UNTRUSTED_SUFFIX = ".spool-untrusted";

/** What the look found: the git directories and `.git` files, the directories it could not read, whether it read all. */
interface Look {
  /** A git directory (whose HEAD is renamed), or a `.git` file (renamed). */
  found: { path: string; kind: "directory" | "file" }[];
  unreadable: string[];
  complete: boolean;
}

/** A path read-only to the command, with what it was at the start (device and inode): a path is kept only while it still is that. */
export interface Kept {
  path: string;
  id: string;
}

/** What `path` is (its device and inode, not following a link); null when it is not there. */
function identity(path: string): string | null {
  try {
    const stats = lstatSync(path, { bigint: true });
    return `${stats.dev}:${stats.ino}`;
  } catch {
    return null;
  }
}

/** `paths` as they are now (those not there left out): what the look holds them to once the command has ended. */
export const keptAsNow = (paths: readonly string[]): Kept[] =>
  paths.flatMap((path) => {
    const id = identity(path);
    return id === null ? [] : [{ path, id }];
  });

/** What a git config named, with what it was at the start: itself (null: not there), and what lies on its way. */
export interface NamedThen extends Named {
  id: string | null;
  /** It was a link (not bound: where it leads is). */
  link: boolean;
  /** The directories from the project root down to it, and to where it leads, with that (`chainOf`). */
  way: string;
}

/** `named` in `workspace` as it is now: what the look holds each to once the command has ended. */
export const namedAsNow = (workspace: string, named: readonly Named[]): NamedThen[] =>
  named.map((n) => ({
    ...n,
    id: namedIdentity(n.path),
    link: lstatSync(n.path, { throwIfNoEntry: false })?.isSymbolicLink() ?? false,
    way: wayOf(workspace, n),
  }));

/** What lies on a named path's way (each directory from `workspace` down, and where it leads with what that is). */
const wayOf = (workspace: string, n: Named) => `${chainOf(workspace, n.path)}>${realOrPlanned(n.path)}>${chainOf(workspace, n.real)}>${identity(n.real)}`;

/** Each directory between `workspace` and `path` (neither included) as it is: identity, type, where a link leads. */
function chainOf(workspace: string, path: string): string {
  if (!within(path, workspace)) return "";
  let at = workspace;
  const parts = relative(workspace, path).split(sep).slice(0, -1);
  return parts.map((part) => namedIdentity((at = join(at, part))) ?? "-").join("/");
}

/**
 * What a named path is: its identity, its type, and where it leads when it is a link. A named path that is not bound
 * (a link, or not there) may be removed and made again, and the file system may give the new one the old one's inode
 * (a link replaced by a directory did, one run in three).
 */
function namedIdentity(path: string): string | null {
  const id = identity(path);
  if (id === null) return null;
  try {
    const stats = lstatSync(path);
    return `${id}:${stats.mode & 0o170000}:${stats.isSymbolicLink() ? readlinkSync(path) : ""}`;
  } catch {
    return null;
  }
}

/**
 * Whether the command could have put something of its own where a named path is: something on its way changed (a
 * directory moved away and another made, a link put there, where a link leads moved), or one not there at the start
 * is there now, or one that was a link (not bound) is another now. One bound read-only, with its way unchanged, the
 * command could not replace (a person's editor writing it anew outside meanwhile is theirs); one not there now
 * (moved away whole) leaves git nothing to run; a directory is not run as a program.
 */
function namedChanged(workspace: string, n: NamedThen): boolean {
  const now = namedIdentity(n.path);
  if (runs(n) && lstatSync(n.path, { throwIfNoEntry: false })?.isDirectory()) return false;
  if (wayOf(workspace, n) !== n.way) return now !== null || linkOnPath(workspace, n.path) !== null;
  if (now === null) return false;
  return n.id === null || (n.link && now !== n.id);
}

/**
 * What a git config named that is not what it was at the start (made where it was not, replaced, or its parent moved
 * away and another put there): the command made it, and git would run or read it. Each is renamed aside, or, when it
 * cannot be (a link on its path since), the repository whose config names it is made unknown to git. Its lines.
 */
function untrustNamed(workspace: string, named: readonly NamedThen[]): string[] {
  const lines: string[] = [];
  const shown = (path: string) => relative(workspace, path) || ".";
  for (const n of named) {
    if (!namedChanged(workspace, n)) continue;
    const what = `${shown(n.path)}, which the config of ${shown(n.repo)} names as its ${n.what}, is not what it was when this command started (it made, replaced or moved it); git ${{ "hooks directory": "runs the hooks in it", hook: "runs it", "included config": "reads it as config", program: "runs it" }[n.what]} wherever the person runs git there`;
    try {
      lines.push(`spool: ${what}, so it was renamed ${basename(renameAside(n.path))}: read it (with cat) before you rename it back\n`);
    } catch (error) {
      // A link on its path since: the link is renamed (git there finds nothing), else the repository's HEAD.
      const instead = [linkOnPath(workspace, n.path), join(n.repo, "HEAD")].filter((p): p is string => p !== null);
      const renamed = instead.find((path) => {
        try {
          renameAside(path);
          return true;
        } catch {
          return false;
        }
      });
      lines.push(
        renamed
          ? `spool: ${what}; it could not be renamed (${(error as Error).message}), so ${shown(renamed)} was renamed ${basename(renamed)}${UNTRUSTED_SUFFIX}: look at ${shown(n.path)} before you rename it back\n`
          : `spool: ${what}; neither it, a link on its path, nor the repository's HEAD could be renamed: look at it before you run git there\n`,
      );
    }
  }
  return lines;
}

/** The first symbolic link on `path` below `workspace` (the one nearest the workspace), or null. */
function linkOnPath(workspace: string, path: string): string | null {
  let at = workspace;
  for (const part of relative(workspace, path).split(sep).slice(0, -1)) {
    at = join(at, part);
    if (lstatSync(at, { throwIfNoEntry: false })?.isSymbolicLink()) return at;
  }
  return null;
}

/**
 * Every git directory and `.git` file in `workspace` outside what was kept (`node_modules` aside): a kept path counts
 * only while it is what it was (a command may move a read-only mount away with its parent and put a repository in its
 * place). Read in full (the command chose the project's size) unless `bounded` (GIT_SEARCH).
 */
async function look(workspace: string, kept: readonly Kept[], bounded: boolean): Promise<Look> {
  const result: Look = { found: [], unreadable: [], complete: true };
  const still = kept.filter((k) => identity(k.path) === k.id).map((k) => k.path);
  let read = 0;
  const queue = [workspace];
  for (let dir = queue.shift(); dir !== undefined; dir = queue.shift()) {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") result.unreadable.push(dir);
      continue;
    }
    read += entries.length;
    if (bounded && read > GIT_SEARCH.entries) return { ...result, complete: false };
    // The root too: one that was a git directory at the start refused the command (sandbox/workspace.ts).
    if (isGitDirectory(entries)) result.found.push({ path: dir, kind: "directory" });
    for (const entry of entries) {
      const path = join(dir, entry.name);
      // What was read-only to the command is as it was.
      if (still.some((k) => within(path, k))) continue;
      if (entry.name === ".git" && !entry.isDirectory()) result.found.push({ path, kind: "file" });
      else if (entry.isDirectory() && entry.name !== "node_modules") queue.push(path);
    }
  }
  return result;
}

/** When `path` last came to be or was moved: the later of its birth time and its last status change (a rename changes it); 0 when it is not there. */
function changedAt(path: string): number {
  try {
    const stats = lstatSync(path);
    return Math.max(stats.birthtimeMs, stats.ctimeMs);
  } catch {
    return 0;
  }
}

/** A name beside `path` that is free: `path` + UNTRUSTED_SUFFIX, then with a number. */
function freeName(path: string): string {
  for (let n = 1; ; n++) {
    const candidate = `${path}${UNTRUSTED_SUFFIX}${n === 1 ? "" : `-${n}`}`;
    if (!lstatSync(candidate, { throwIfNoEntry: false })) return candidate;
  }
}

/** Renames `path` beside itself (to a free name), once its directory is still where the look found it; the new name. */
function renameAside(path: string): string {
  const to = freeName(path);
  // The directory is still the one the look found (no link put on its path since, by another command of the project).
  if (realpathSync(dirname(path)) !== dirname(path)) throw new Error(`${dirname(path)} is no longer the directory it was`);
  renameSync(path, to);
  return to;
}

/**
 * Makes every git directory and `.git` file in `repos.workspace` that was not read-only to the command (`repos.kept`)
 * unknown to git: a git directory's HEAD becomes `HEAD.spool-untrusted`, a `.git` file `.git.spool-untrusted`. Where
 * the search at the start did not read all of the project (`repos.complete` false), only those made since its start
 * are (by birth time), since one past its reach may be the person's. The notice for the command's stderr, or null.
 */
export async function untrustNewRepositories(repos: NewRepos): Promise<string | null> {
  const { workspace, since, kept, named, complete } = repos;
  const lines = untrustNamed(workspace, named);
  const found = await look(workspace, kept, !complete);
  const shown = (path: string) => relative(workspace, path) || ".";
  for (const { path, kind } of found.found) {
    const entry = kind === "directory" ? join(path, "HEAD") : path;
    // Past the start's search: only what came to be or was moved since (timestamps come from a coarse clock: a little
    // before the start counts as since). A command can set neither time back.
    const parts = kind === "directory" ? [entry, join(path, "config"), join(path, "commondir")] : [entry];
    if (!complete && Math.max(...parts.map(changedAt)) < since - 50) continue;
    try {
      const to = renameAside(entry);
      lines.push(
        `spool: ${shown(path)} is a ${kind === "directory" ? "git directory" : ".git file"} this command could write; git runs what a repository's config and hooks name wherever the person runs git there, so ${shown(entry)} was renamed ${basename(to)}: read its config and hooks (with cat, not in a shell whose prompt runs git) before you rename it back\n`,
      );
    } catch (error) {
      lines.push(
        `spool: ${shown(path)} is a ${kind === "directory" ? "git directory" : ".git file"} this command could write, and it could not be renamed (${(error as Error).message}): read its config and hooks before you run git there\n`,
      );
    }
  }
  for (const dir of found.unreadable)
    lines.push(
      `spool: ${shown(dir)} could not be read after this command ran, so a git repository made there would still be known to git: do not run git in it before you have looked (ls -la, cat)\n`,
    );
  if (!found.complete || !complete)
    lines.push(
      `spool: the project holds more than ${GIT_SEARCH.entries} entries, so it was not all looked at for git repositories this command could write: look for any before you run git in the project\n`,
    );
  return lines.length > 0 ? lines.join("") : null;
}

/** Where a workspace-write command's repositories are looked for: its project root, since when, what was read-only to it, and whether the search for that read all of the project. */
export interface NewRepos {
  workspace: string;
  since: number;
  /** What was read-only to it, as it was at its start (`keptAsNow`). */
  kept: readonly Kept[];
  /** What its git configs named, as it was at its start (`namedAsNow`). */
  named: readonly NamedThen[];
  complete: boolean;
}

/** What the look at a command's end in `workspace` holds to: its start now, what was bound read-only and what git's configs named, as they are now. */
export const reposFrom = (
  workspace: string,
  kept: readonly ({ path: string } | { source: string })[],
  protect: { named: readonly Named[]; complete: boolean },
): NewRepos => ({
  workspace,
  since: Date.now(),
  kept: keptAsNow(kept.map((k) => ("path" in k ? k.path : k.source))),
  named: namedAsNow(workspace, protect.named),
  complete: protect.complete,
});

/**
 * `execution` with the look at its end (none without `repos`: not workspace-write): once the command has ended (its
 * result), the repositories it made in `repos.workspace` are renamed, and the notice ends its stderr; the result
 * comes after both.
 */
export function untrustingNewRepositories(execution: Execution, repos: NewRepos | null): Execution {
  if (!repos) return execution;
  return withRepositoryLook(execution, () => untrustNewRepositories(repos));
}

/** How long the look may take before the command's end is told without it (a hung mount, a connection half gone). */
export const LOOK_TIMEOUT_MS = 60_000;

/** `execution` with `look` run once it has ended (its result): what `look` says (null: nothing) ends its stderr, and the result comes after. */
export function withRepositoryLook(execution: Execution, look: () => Promise<string | null>): Execution {
  let tell: (notice: string | null) => void = () => {};
  const notice = new Promise<string | null>((resolve) => {
    tell = resolve;
  });
  const stderr = withTrailer(execution.stderr, notice);
  const failed = (why: string) => `spool: the look for git repositories this command could write ${why}: look for any before you run git in the project\n`;
  const result: Promise<ExecResult> = execution.result.then(
    async (ended) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(failed(`did not end within ${LOOK_TIMEOUT_MS / 1000} s`)), LOOK_TIMEOUT_MS);
      });
      tell(await Promise.race([look().catch((error: unknown) => failed(`failed (${(error as Error).message})`)), late]));
      clearTimeout(timer);
      // As every backend's: the output is delivered once the result comes (to a consumer reading it).
      await stderr.delivered;
      return ended;
    },
    async (error: unknown) => {
      tell(null);
      throw error;
    },
  );
  return { ...execution, stderr: stderr.stream, result };
}

/**
 * `source` with `trailer`'s text after its end (nothing when it says null); `delivered` once all of it was passed on
 * (read to its end where it is being read, else put in the stream).
 */
function withTrailer(source: Readable, trailer: Promise<string | null>): { stream: Readable; delivered: Promise<void> } {
  const out = new PassThrough();
  let ended = false;
  source.pipe(out, { end: false });
  const delivered = new Promise<void>((resolve) => {
    out.once("end", resolve);
    out.once("close", resolve);
    let finishing = false;
    // At its end, or when it closed without one (destroyed): the trailer, then the end.
    const finish = () => {
      if (finishing) return;
      finishing = true;
      void trailer.then((text) => {
        ended = true;
        if (text && !out.destroyed) out.write(text);
        out.end();
        if (!out.readableFlowing) resolve();
      });
    };
    source.once("end", finish);
    source.once("close", finish);
  });
  source.once("error", (error) => out.destroy(error));
  // The consumer takes nothing more: neither does the source.
  out.once("close", () => {
    if (!ended) source.destroy();
  });
  return { stream: out, delivered };
}
