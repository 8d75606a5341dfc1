import { type Dirent, lstatSync, realpathSync, renameSync } from "node:fs";
import { opendir } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import type { ExecResult, Execution } from "./backend.js";
import { isBareRepository } from "./sandbox/workspace.js";

/*
 * Git repositories a workspace-write command made in its project. The project's own `.git` directories are read-only
 * inside the sandbox (workspace.ts), but a command may still make a repository where there was none: `git init`, or a
 * `.git` (or a bare repository: HEAD, objects/, refs/) written by hand with a config naming a program
 * (core.fsmonitor, core.pager, a hook). The person's next git there, a shell prompt's `git status` included, would run
 * it outside any sandbox. Once the command has ended, with none of its processes left, the runner looks for them and
 * renames each so git no longer finds it, and says so at the end of the command's stderr.
 */

/** How many entries the look reads at most (`node_modules` is not searched): past it, the notice says the look stopped. */
export const REPOSITORY_LOOK = { entries: 100_000 } as const;

/** What the renamed repositories' paths end with. */
export const UNTRUSTED_SUFFIX = ".spool-untrusted";

/** A repository found: the entry git would find it by (a `.git`, or a bare repository's HEAD). */
interface Found {
  /** The `.git` entry, or the bare repository's HEAD file. */
  entry: string;
  /** The repository as the person would name it (the `.git` entry, or the bare repository's directory). */
  repository: string;
}

/** Every repository in `workspace` (bounded by REPOSITORY_LOOK), and whether the look stopped before its end. */
async function repositories(workspace: string): Promise<{ found: Found[]; complete: boolean }> {
  const found: Found[] = [];
  let read = 0;
  const queue = [workspace];
  for (let dir = queue.shift(); dir !== undefined; dir = queue.shift()) {
    const entries: Dirent[] = [];
    try {
      for await (const entry of await opendir(dir)) {
        entries.push(entry);
        if (++read > REPOSITORY_LOOK.entries) return { found, complete: false };
      }
    } catch {
      continue;
    }
    if (dir !== workspace && isBareRepository(entries)) found.push({ entry: join(dir, "HEAD"), repository: dir });
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.name === ".git") found.push({ entry: path, repository: path });
      else if (entry.isDirectory() && entry.name !== "node_modules") queue.push(path);
    }
  }
  return { found, complete: true };
}

/** When `path` came to be: its birth time where the filesystem keeps one, else its last status change; 0 when it is not there. */
function bornAt(path: string): number {
  try {
    const stats = lstatSync(path);
    return stats.birthtimeMs > 0 ? stats.birthtimeMs : stats.ctimeMs;
  } catch {
    return 0;
  }
}

/**
 * When the parts git reads a repository by last came to be: the entry, and in the repository its config, HEAD and
 * commondir, and a bare one's objects/ and refs/. A command cannot set a birth time: one that filled an empty `.git`,
 * or replaced a config (as `git config` does, through a new file), made them since its start.
 */
function madeAt({ entry, repository }: Found): number {
  const inside =
    entry === repository
      ? ["config", "HEAD", "commondir"].map((name) => join(entry, name))
      : ["config", "objects", "refs"].map((name) => join(repository, name));
  return Math.max(bornAt(entry), ...inside.map(bornAt));
}

/** A name beside `path` that is free: `path` + UNTRUSTED_SUFFIX, then with a number. */
function freeName(path: string): string {
  for (let n = 1; ; n++) {
    const candidate = `${path}${UNTRUSTED_SUFFIX}${n === 1 ? "" : `-${n}`}`;
    if (!lstatSync(candidate, { throwIfNoEntry: false })) return candidate;
  }
}

/**
 * Renames the repositories a command made in `workspace` since `since` (ms since the epoch), leaving those in `kept`
 * (bound read-only while it ran): each `.git` becomes `.git.spool-untrusted`, and a bare repository's HEAD
 * `HEAD.spool-untrusted`, so git no longer takes either for a repository. The notice for the command's stderr, or null.
 */
export async function untrustNewRepositories(workspace: string, since: number, kept: readonly string[]): Promise<string | null> {
  const { found, complete } = await repositories(workspace);
  const lines: string[] = [];
  const shown = (path: string) => relative(workspace, path) || ".";
  for (const { entry, repository } of found) {
    if (kept.includes(repository)) continue;
    // Timestamps come from a coarse clock: a little before the start counts as made by the command.
    if (madeAt({ entry, repository }) < since - 50) continue;
    const to = freeName(entry);
    try {
      // The directory is still where the look found it (no link put on the path since, by another command).
      if (realpathSync(dirname(entry)) !== dirname(entry)) throw new Error(`${dirname(entry)} is no longer the directory it was`);
      renameSync(entry, to);
      lines.push(
        `spool: the git repository ${shown(repository)} was made while this command ran; git runs what a repository's config and hooks name wherever the person runs git there, so ${shown(entry)} was renamed ${basename(to)}: rename it back once you have looked at its config and hooks (or if you made it yourself)\n`,
      );
    } catch (error) {
      lines.push(
        `spool: the git repository ${shown(repository)} was made while this command ran, and it could not be renamed (${(error as Error).message}): look at its config and hooks before you run git there\n`,
      );
    }
  }
  if (!complete)
    lines.push(
      `spool: the project holds more than ${REPOSITORY_LOOK.entries} entries, so it was not all looked at for git repositories made while this command ran: look for any before you run git in the project\n`,
    );
  return lines.length > 0 ? lines.join("") : null;
}

/** Where a workspace-write command's new repositories are looked for: its project root, since when, and what was bound read-only. */
export interface NewRepos {
  workspace: string;
  since: number;
  kept: readonly string[];
}

/**
 * `execution` with the look at its end (none without `repos`: not workspace-write): once the command has ended (its
 * result), the repositories it made in `repos.workspace` are renamed, and the notice ends its stderr; the result
 * comes after both.
 */
export function untrustingNewRepositories(execution: Execution, repos: NewRepos | null): Execution {
  if (!repos) return execution;
  return withRepositoryLook(execution, () => untrustNewRepositories(repos.workspace, repos.since, repos.kept));
}

/** `execution` with `look` run once it has ended (its result): what `look` says (null: nothing) ends its stderr, and the result comes after. */
export function withRepositoryLook(execution: Execution, look: () => Promise<string | null>): Execution {
  let tell: (notice: string | null) => void = () => {};
  const notice = new Promise<string | null>((resolve) => {
    tell = resolve;
  });
  const stderr = withTrailer(execution.stderr, notice);
  const result: Promise<ExecResult> = execution.result.then(async (ended) => {
    tell(await look().catch((error: unknown) => `spool: the look for git repositories made while this command ran failed (${(error as Error).message})\n`));
    // As every backend's: the output is delivered once the result comes (to a consumer reading it).
    await stderr.delivered;
    return ended;
  });
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
