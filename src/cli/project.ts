import { existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { PROJECT_NAME, PROJECT_NAME_RULE, projectNameFrom } from "../protocol/project-name.js";
import { CliError, EXIT } from "./errors.js";

/** The marker `spool init` writes: `<root>/.spool/project.json` holding `{"name": …}`. */
export const MARKER = join(".spool", "project.json");

/** How a command names its project: by name (flag or marker) and/or by root. */
export interface ProjectRef {
  name?: string;
  root?: string;
  /** How it was found, for messages. */
  source: "flag" | "env" | "marker" | "git";
}

/**
 * Finds the project like git finds a repository: walking up from `start` to
 * the first directory holding `.spool/project.json` (the project named
 * there, rooted at that directory) or `.git` (the project rooted there).
 * `--project`/`$SPOOL_PROJECT` name one directly. Null when there is none.
 */
export function findProject(start: string, flags: { project?: string }, env: NodeJS.ProcessEnv = process.env): ProjectRef | null {
  if (flags.project) return { name: checkName(flags.project, "--project"), source: "flag" };
  if (env.SPOOL_PROJECT) return { name: checkName(env.SPOOL_PROJECT, "SPOOL_PROJECT"), source: "env" };
  const home = spoolHome(env);
  let dir = canonical(start);
  for (;;) {
    const marker = join(dir, MARKER);
    // The Spool home is a `.spool` directory too: only a project.json makes a marker, and never the home's own.
    if (existsSync(marker) && canonical(join(dir, ".spool")) !== canonical(home)) return { name: readMarker(marker), root: dir, source: "marker" };
    if (existsSync(join(dir, ".git"))) return { root: dir, source: "git" };
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** Like findProject, but a missing project is an error that says what to do. */
export function requireProject(start: string, flags: { project?: string }, env: NodeJS.ProcessEnv = process.env): ProjectRef {
  const found = findProject(start, flags, env);
  if (found) return found;
  throw new CliError(
    `not in a Spool project: no ${MARKER} and no git repository in ${start} or above — run \`spool init\` in the project's root, or pass --project NAME`,
    EXIT.usage,
  );
}

/** `spool init [NAME]`: writes the marker in `dir`; returns the name. */
export function writeMarker(dir: string, name: string | undefined, env: NodeJS.ProcessEnv = process.env): { name: string; marker: string; existed: boolean } {
  const root = canonical(dir);
  const marker = join(root, MARKER);
  if (canonical(join(root, ".spool")) === canonical(spoolHome(env))) {
    throw new CliError(
      `${join(root, ".spool")} is the Spool home (where the server keeps its database); run \`spool init\` in a project's directory`,
      EXIT.usage,
    );
  }
  if (existsSync(marker)) {
    const current = readMarker(marker);
    if (name !== undefined && name !== current) {
      throw new CliError(`${marker} already names project "${current}"; edit it to rename the project's marker`, EXIT.failed);
    }
    return { name: current, marker, existed: true };
  }
  const chosen = name === undefined ? projectNameFrom(basename(root)) : checkName(name, "NAME");
  mkdirSync(join(root, ".spool"), { recursive: true });
  writeFileSync(marker, `${JSON.stringify({ name: chosen }, null, 2)}\n`);
  return { name: chosen, marker, existed: false };
}

export function spoolHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.SPOOL_HOME ?? join(homedir(), ".spool");
}

function readMarker(marker: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(marker, "utf8"));
  } catch (error) {
    throw new CliError(`${marker} is not valid JSON (${error instanceof Error ? error.message : String(error)}); it should hold {"name": "PROJECT"}`);
  }
  const name = (parsed as { name?: unknown } | null)?.name;
  if (typeof name !== "string") throw new CliError(`${marker} has no "name"; it should hold {"name": "PROJECT"}`);
  return checkName(name, `"name" in ${marker}`);
}

function checkName(name: string, where: string): string {
  if (!PROJECT_NAME.test(name)) throw new CliError(`${where}: "${name}" is not a valid project name (${PROJECT_NAME_RULE})`, EXIT.usage);
  return name;
}

/** The real path of a directory (symbolic links resolved), so one directory is one project however it is reached. */
function canonical(dir: string): string {
  const absolute = resolve(dir);
  try {
    return statSync(absolute).isDirectory() ? realpathSync(absolute) : absolute;
  } catch {
    return absolute;
  }
}
