import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { realOrPlanned, within } from "../paths.js";

/*
 * A home is never inside a project (SPEC §7 "What a command sees"). A sandboxed command sees its project whole, and a
 * command's view is fixed when it starts: a home made inside a project later (a second server, another HOME, another
 * registry) would be in the view of every command of that project already running, which could read its token and
 * database, and of every later one whose runner's registry does not record it. And what a command writes in its
 * project is there before the home is: a config.json naming a plugin, a socket of its own. So the server refuses a
 * home that lies in a project, as a client finds projects (src/cli/project.ts: the nearest directory above holding
 * `.spool/project.json` or `.git`).
 *
 * A project at or above a home directory (a dotfiles repository in ~) is no sandbox's workspace: runners refuse it,
 * its view would hold the whole home (src/runners/local/local.ts). The walk stops there, so ~/.spool is never refused
 * for a ~/.git.
 */

/**
 * A home (or a runner's state directory) lies where a sandboxed command sees it, or will: the server (or runner)
 * refuses to start. HomeInProject and HomeInView (views.ts) say where.
 */
export class HomeSeen extends Error {}

/** The home (or a runner's state directory) lies in a project's directory. */
export class HomeInProject extends HomeSeen {
  override readonly name = "HomeInProject";
}

// A home not made yet is judged by the directory it will be made in.
const real = (path: string): string => realOrPlanned(resolve(path));

/** The project `home` lies in (its root and the marker found), or null. `homes`: the machine's home directories. */
export function projectHolding(home: string, homes: readonly string[]): { root: string; marker: string } | null {
  const spoolHome = real(home);
  const stops = homes.map(real);
  for (let dir = dirname(spoolHome); ; dir = dirname(dir)) {
    // At or above a home directory: no runner makes a workspace of it (see above).
    if (dir === "/" || stops.some((stop) => within(stop, dir))) return null;
    // A `.spool/project.json` counts even when that `.spool` is this home: a client of another home finds the project there.
    const marker = join(dir, ".spool", "project.json");
    if (existsSync(marker)) return { root: dir, marker };
    if (existsSync(join(dir, ".git"))) return { root: dir, marker: join(dir, ".git") };
  }
}

/** The machine's home directories, where the walk stops. */
const machineHomes = (env: NodeJS.ProcessEnv) => ["/root", "/home", homedir(), ...(env.HOME ? [env.HOME] : [])];

/**
 * Throws HomeInProject when `path` (what Spool makes and then trusts: a home, a runner's state directory) lies in a
 * project; `what` names it and `risk` says what a command could do with it.
 */
export function checkOutsideProjects(path: string, what: string, risk: string, env: NodeJS.ProcessEnv = process.env): void {
  const found = projectHolding(path, machineHomes(env));
  if (!found) return;
  throw new HomeInProject(
    `Refusing to start: ${what} ${path} lies in the project ${found.root} (${found.marker}). Every sandboxed command of that project sees the project, so ${risk}.`,
  );
}

/** Throws HomeInProject (saying what to do) when `home` lies in a project. */
export function checkHomeOutsideProjects(home: string, env: NodeJS.ProcessEnv = process.env): void {
  checkOutsideProjects(
    home,
    "the Spool home",
    "it could read this home's token and database, or write a config.json into it before the server starts. Choose a home outside every project (--home, SPOOL_HOME; the default is ~/.spool)",
    env,
  );
}
