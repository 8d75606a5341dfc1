import { closeSync, constants, existsSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { realOrPlanned } from "./view.js";

/*
 * What a git directory's config names that git runs or reads, as paths, for the sandbox to keep read-only at a
 * workspace-write command's start and to look at once it has ended (sandbox/workspace.ts, runners/new-repos.ts): a
 * command may write the project, and git runs these wherever the person runs it there, outside any sandbox.
 */

/**
 * A path a git directory's config names that git runs or reads (core.hooksPath: the hooks directory; include.path: a
 * config file; a program a command value names by its path), as a real path, there at the start or not: bound
 * read-only when it is there, and looked at once the command has ended, since a command could make it where it was
 * not, or move its parent away.
 */
export interface Named {
  /** As git finds it (a link on it not followed): what the look holds to its start. */
  path: string;
  /** Where it leads (a real path): what is bound read-only. */
  real: string;
  /** The git directory whose config names it. */
  repo: string;
  what: "hooks directory" | "hook" | "included config" | "program";
}

/** The hooks git runs by name from its hooks directory (githooks(5)): named one by one when that directory is a work tree. */
const GIT_HOOKS = [
  "applypatch-msg",
  "pre-applypatch",
  "post-applypatch",
  "pre-commit",
  "pre-merge-commit",
  "prepare-commit-msg",
  "commit-msg",
  "post-commit",
  "pre-rebase",
  "post-checkout",
  "post-merge",
  "pre-push",
  "pre-receive",
  "update",
  "proc-receive",
  "post-receive",
  "post-update",
  "reference-transaction",
  "push-to-checkout",
  "pre-auto-gc",
  "post-rewrite",
  "sendemail-validate",
  "fsmonitor-watchman",
  "p4-changelist",
  "p4-prepare-changelist",
  "p4-post-changelist",
  "p4-pre-submit",
  "post-index-change",
] as const;

/**
 * The values git runs as a command (through a shell, from the work tree's top), by section and key ("*": any key):
 * each of their words that names a path (holds a `/`) is a program, or a script handed to one, that git runs.
 */
const COMMANDS: Record<string, readonly string[]> = {
  core: ["fsmonitor", "editor", "pager", "sshcommand", "askpass", "alternaterefscommand", "gitproxy"],
  sequence: ["editor"],
  gpg: ["program", "defaultkeycommand"],
  trailer: ["cmd", "command"],
  submodule: ["update"],
  sendemail: ["smtpserver", "sendmailcmd", "tocmd", "cccmd", "headercmd"],
  imap: ["tunnel"],
  remote: ["uploadpack", "receivepack"],
  tar: ["command"],
  guitool: ["cmd"],
  // Hooks set in config (git 2.54): `[hook "lint"] event = pre-commit` and the command it runs.
  hook: ["command"],
  instaweb: ["httpd"],
  svn: ["authorsprog"],
  // git-lfs: a custom transfer agent's program, an extension's filters.
  lfs: ["path", "clean", "smudge"],
  credential: ["helper"],
  diff: ["textconv", "command", "external"],
  filter: ["clean", "smudge", "process"],
  merge: ["driver"],
  pager: ["*"],
  alias: ["*"],
  difftool: ["cmd", "path"],
  mergetool: ["cmd", "path"],
  interactive: ["difffilter"],
  web: ["browser"],
  browser: ["cmd", "path"],
  man: ["cmd", "path"],
};

/** How much of a config file is read, and how deep includes are followed (git's own limit is 10). */
const CONFIG_BYTES = 256 * 1024;
const INCLUDE_DEPTH = 10;

/**
 * Whose git reads the configs, for one start: their home (for `~/`), the configs every repository of theirs reads
 * (global, system), and what was read so far (each file once for a work tree; at most MAX_READS in all: a config a
 * command wrote, including itself ten times over, is not read ten to the tenth times).
 */
export interface GitReader {
  home: string | null;
  configs: readonly string[];
  read: Set<string>;
}

/** How many config files one start reads at most. */
const MAX_READS = 2_000;

/** The git user whose home is `home` and whose environment is `env`: their global config files and the system's. */
export function gitReader(home: string | undefined, env: NodeJS.ProcessEnv): GitReader {
  if (!home) return { home: null, configs: ["/etc/gitconfig"], read: new Set() };
  const global = env.GIT_CONFIG_GLOBAL ? [env.GIT_CONFIG_GLOBAL] : [join(env.XDG_CONFIG_HOME || join(home, ".config"), "git/config"), join(home, ".gitconfig")];
  return { home, configs: [env.GIT_CONFIG_SYSTEM || "/etc/gitconfig", ...global], read: new Set() };
}

/** Whether a named path is run as a program (a hook, a command's): only a file is. */
export const runs = (named: Named): boolean => named.what === "program" || named.what === "hook";

/** Whether a named path is bound read-only at the start: what is there, but a program only when it is a file (a directory is not run). */
export function bindable(named: Named): boolean {
  try {
    const stats = statSync(named.real);
    return !runs(named) || stats.isFile();
  } catch {
    return false;
  }
}

/**
 * What a git directory's config (and config.worktree; and those of the common directory a `commondir` names, as a
 * linked work tree's git reads them; and the user's and the system's, `reader`) names, for git run in the work tree
 * `worktree`: core.hooksPath and the programs of command values relative to the work tree (husky's `.husky/_`, which
 * git ignores and no diff shows), include.path and includeIf.*.path relative to the config that names them, followed
 * as deep as git follows them.
 */
export function namedByConfig(gitDir: string, worktree: string, reader: GitReader = gitReader(undefined, {})): Named[] {
  const dirs = [gitDir];
  // A linked work tree's or a submodule's git directory: the common one holds the config.
  const common = readRegular(join(gitDir, "commondir"), 4096)?.trim();
  if (common) dirs.push(resolve(gitDir, common));
  const named: Named[] = [];
  // The user's and the system's first: a relative core.hooksPath there is each work tree's.
  const files = [...reader.configs, ...dirs.flatMap((dir) => [join(dir, "config"), join(dir, "config.worktree")])];
  for (const file of files) namedIn(file, gitDir, worktree, named, 0, reader);
  return named;
}

/**
 * What the config file `file` (of the repository whose git directory is `repo`) names, for git run in `worktree`,
 * added to `named`; the files it includes (relative to it) are read in turn, as deep as git reads them.
 */
function namedIn(file: string, repo: string, worktree: string, named: Named[], depth: number, reader: GitReader): void {
  const key = `${file}\u0000${worktree}`;
  if (reader.read.has(key) || reader.read.size >= MAX_READS) return;
  reader.read.add(key);
  const text = readRegular(file, CONFIG_BYTES);
  if (text === null) return;
  const home = reader.home;
  const at = (base: string, given: string, what: Named["what"]) => {
    const path = resolve(base, given);
    named.push({ path, real: realOrPlanned(path), repo, what });
    return path;
  };
  // The work tree, or a directory holding it, as written or where it leads (a link to `.`).
  const tree = realOrPlanned(worktree);
  const holds = (path: string) => [path, realOrPlanned(path)].some((p) => [worktree, tree].some((t) => t === p || t.startsWith(`${p === "/" ? "" : p}/`)));
  // A hooks directory that is the work tree or holds it (`core.hooksPath = .`, a nested repository's `..`) is its hooks
  // one by one: bound whole, it would make the project read-only. Those outside the project are left out (protectedIn).
  const hooksAt = (base: string, given: string) => {
    const dir = resolve(base, given);
    if (holds(dir)) for (const hook of GIT_HOOKS) at(dir, hook, "hook");
    else at(dir, ".", "hooks directory");
    return dir;
  };
  for (const { section, key, value: read } of configEntries(text)) {
    // `~/` is the user's home, as git reads it; another user's (`~name/`) is not looked for.
    const given = read.startsWith("~/") && home ? join(home, read.slice(2)) : read;
    if (!given || given.startsWith("~")) continue;
    if (section === "core" && key === "hookspath") {
      const hooks = hooksAt(worktree, given);
      // husky's hooks (`.husky/_/pre-commit`) run the scripts beside them (`.husky/pre-commit`, through `_/h`).
      if (existsSync(join(hooks, "h"))) hooksAt(hooks, "..");
    } else if ((section === "include" || section === "includeif") && key === "path") {
      const included = at(dirname(file), given, "included config");
      if (depth < INCLUDE_DEPTH) namedIn(included, repo, worktree, named, depth + 1, reader);
    } else if (COMMANDS[section]?.some((k) => k === key || k === "*")) {
      if (section === "alias" && !given.startsWith("!")) continue;
      for (const program of programsIn(given.replace(/^!/, ""))) {
        // Never the work tree or what holds it (`./`, `../`): a program is a file. Outside the project: left out (protectedIn).
        if (!holds(resolve(worktree, program))) at(worktree, program, "program");
      }
    }
  }
}

/** Interpreters whose first argument that is not an option is the script they run. */
const INTERPRETERS = new Set(["sh", "bash", "dash", "zsh", "node", "python", "python3", "perl", "ruby", "env"]);

/**
 * The programs a command value runs, named by a path (a word holding a `/`, not ending in one): the first word of each
 * of its commands (after `;`, `&`, `|`, and variables set before it), and the script an interpreter runs.
 */
export function programsIn(command: string): string[] {
  const programs: string[] = [];
  for (const part of command.split(/[;&|()]+/)) {
    const words = part
      .trim()
      .split(/\s+/)
      .map((w) => w.replace(/^['"]+|['"]+$/g, ""))
      .filter((w) => w && !/^[A-Za-z_][A-Za-z0-9_]*=/.test(w));
    const first = words[0];
    if (!first) continue;
    const script = INTERPRETERS.has(first.split("/").pop()!) ? words.slice(1).find((w) => !w.startsWith("-")) : undefined;
    for (const word of [first, script]) if (word?.includes("/") && !word.endsWith("/") && !word.startsWith("-")) programs.push(word);
  }
  return programs;
}

/** The escapes git takes in a config value; any other is "bad config line". */
const ESCAPES: Readonly<Record<string, string>> = { t: "\t", b: "\b", n: "\n", '"': '"', "\\": "\\" };

/** One `key = value` of a config file: its section (lower case, without its subsection) and key (lower case). */
export interface ConfigEntry {
  section: string;
  key: string;
  value: string;
}

/**
 * A config file's entries as git's parser reads them (config.c): `#` and `;` start a comment to the end of the line,
 * outside quotes; a value goes on over a line that ends in a backslash, but a comment does not; `\\`, `\"`, `\n`,
 * `\t`, `\b` are escapes; blanks outside quotes count only between words; `[name "sub"]` (quoted, escapes taken) and
 * `[name.sub]` name a subsection; a key may follow its section's header on the same line. Where git would stop with
 * "bad config line" (and run nothing of the file), reading stops, keeping what came before.
 */
export function configEntries(text: string): ConfigEntry[] {
  const entries: ConfigEntry[] = [];
  let i = 0;
  const next = (): string | undefined => {
    if (text[i] === "\r" && text[i + 1] === "\n") i++;
    return text[i++];
  };
  let section = "";
  let comment = false;
  for (;;) {
    const c = next();
    if (c === undefined) return entries;
    if (c === "\n") comment = false;
    else if (comment || /\s/.test(c)) continue;
    else if (c === "#" || c === ";") comment = true;
    else if (c === "[") {
      const header = /^\s*([A-Za-z0-9.-]+)(\s+"(?:[^"\\\n]|\\.)*")?\s*\]/.exec(text.slice(i, i + 4096));
      if (!header) return entries;
      section = header[1]!.toLowerCase().split(".")[0]!;
      i += header[0].length;
    } else if (/[A-Za-z]/.test(c)) {
      let key = c;
      while (i < text.length && /[A-Za-z0-9-]/.test(text[i]!)) key += text[i++];
      while (text[i] === " " || text[i] === "\t") i++;
      if (text[i] === "\n" || text[i] === "\r" || i >= text.length) continue; // a boolean: true, no value
      if (text[i++] !== "=") return entries;
      const value = valueAt();
      if (value === null) return entries;
      entries.push({ section, key: key.toLowerCase(), value });
    } else return entries;
  }

  /** The value from `i` to its line's end (continued lines included), as git reads it; null where git stops. */
  function valueAt(): string | null {
    let out = "";
    let pending = "";
    let quoted = false;
    let inComment = false;
    for (;;) {
      const c = next();
      if (c === undefined || c === "\n") return quoted ? null : out;
      if (inComment) continue;
      if (!quoted && (c === " " || c === "\t")) {
        if (out) pending += c;
        continue;
      }
      if (!quoted && (c === "#" || c === ";")) {
        inComment = true;
        continue;
      }
      let add = c;
      if (c === "\\") {
        const escaped = next();
        if (escaped === "\n") continue;
        const taken = escaped === undefined ? undefined : ESCAPES[escaped];
        if (taken === undefined) return null;
        add = taken;
      } else if (c === '"') {
        quoted = !quoted;
        continue;
      }
      out += pending + add;
      pending = "";
    }
  }
}

/** The directory a `.git` file ("gitdir: …") points to, resolved; none when it says nothing readable. */
export function gitdirOf(file: string): string[] {
  try {
    const named = /^gitdir:\s*(.+?)\s*$/m.exec(readRegular(file, 4096) ?? "")?.[1];
    return named ? [realOrPlanned(resolve(dirname(file), named))] : [];
  } catch {
    return [];
  }
}

/**
 * The start of `file` (at most `max` bytes) as text when it is a regular file, else null: what a command left in the
 * project is read, and a FIFO there (or a device) would hold the runner's event loop for ever; it is never waited on.
 */
export function readRegular(file: string, max: number): string | null {
  let fd: number;
  try {
    // A device is not opened (what it does when opened is its own); a FIFO swapped in since is not waited on either.
    if (!statSync(file).isFile()) return null;
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch {
    return null;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) return null;
    const buffer = Buffer.alloc(Math.min(max, stats.size));
    return buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, 0)).toString("utf8");
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}
