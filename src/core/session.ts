import { existsSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import type { ConnectionHandle, ProjectRef } from "../rpc/connection-context.js";
import { SpoolError } from "../rpc/errors.js";
import type { ProjectSummaryRow } from "../store/projects.js";
import { UniqueViolation } from "../store/repositories.js";
import type { CoreDeps } from "./deps.js";
import { nameCandidates, projectNameFrom } from "./project-name.js";
import { ENTRY, OPEN_RUN, RUN } from "./status.js";

/** Joining a project: found by name or by root, created on first use. */
export class Sessions {
  constructor(private readonly deps: CoreDeps) {}

  readonly #deleted: ((projectId: number) => number)[] = [];

  /**
   * The project a connection asks for: by name (its root must match when one is given), or by its
   * root alone. A missing project is created with the root given, unless `create` is false: with the given name, or
   * with one derived from the root's directory name, made unique with a "-N" suffix (`created` says so). A name alone
   * never creates one: a project's root is the directory its commands write in, never the server's own working
   * directory, so a mistyped name is NOT_FOUND.
   */
  async openProject(want: { name?: string; root?: string; create?: boolean; scope?: readonly string[] | null }): Promise<ProjectRef & { created?: true }> {
    const projects = this.deps.repos.projects;
    const root = want.root === undefined ? undefined : this.#checkRoot(want.root);
    const existing = want.name !== undefined ? await projects.findProjectByName(want.name) : await projects.findProjectByRoot(root!);
    if (existing) {
      if (root !== undefined && root !== existing.root) {
        // Only what the caller gave: the other project's root is none of its business (one token may serve tools of one project).
        throw new SpoolError("CONFLICT", `Project name "${existing.name}" is taken by a project with another root; choose another name`, {
          project: existing.name,
        });
      }
      this.#checkNotServers(existing.root);
      return { id: existing.id, name: existing.name, root: existing.root };
    }
    if (want.create === false || root === undefined) {
      const what = want.name !== undefined ? `Project "${want.name}"` : `A project rooted at ${root}`;
      throw new SpoolError("NOT_FOUND", `${what} does not exist${root === undefined ? "" : " yet"}`, {
        ...(want.name !== undefined ? { project: want.name } : {}),
        ...(root ? { root } : {}),
      });
    }
    return this.#create(want.name, root, want.scope ?? null, () => this.openProject(want));
  }

  /**
   * project/create: a project rooted at `root`, named `name` or after the root; CONFLICT when either is taken. `scope`:
   * the projects of the caller's credential when it is scoped (null: every project).
   */
  async createProject(name: string | undefined, root: string, scope: readonly string[] | null = null): Promise<ProjectRef> {
    const dir = this.#checkRoot(root);
    // First: a scoped caller learns nothing of a project outside its scope rooted there (no CONFLICT naming it).
    await this.#checkApartFromOthers(dir, scope);
    const projects = this.deps.repos.projects;
    const taken = (name !== undefined ? await projects.findProjectByName(name) : undefined) ?? (await projects.findProjectByRoot(dir));
    if (taken) {
      const why = taken.name === name ? `the name "${name}" is taken` : `project "${taken.name}" is rooted there already`;
      throw new SpoolError("CONFLICT", `A project rooted at ${dir} cannot be created: ${why}`, { project: taken.name });
    }
    // Checked apart from other projects above already (before the CONFLICT): not again in #create.
    const { created: _, ...made } = await this.#create(name, dir, null, () => this.createProject(name, root, scope));
    return made;
  }

  async #create(
    name: string | undefined,
    dir: string,
    scope: readonly string[] | null,
    again: () => Promise<ProjectRef>,
  ): Promise<ProjectRef & { created?: true }> {
    const projects = this.deps.repos.projects;
    this.#checkNotServers(dir);
    await this.#checkApartFromOthers(dir, scope);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new SpoolError("NOT_FOUND", `Project root ${dir} is not an existing directory`, { root: dir });
    const chosen = name ?? (await this.#freeName(projectNameFrom(basename(dir))));
    try {
      const created = await projects.createProject(chosen, dir);
      return { id: created.id, name: created.name, root: created.root, created: true };
    } catch (error) {
      // Two connections created it at once: the other one won, use it.
      if (error instanceof UniqueViolation) return again();
      throw error;
    }
  }

  /**
   * project/delete: removes the project named and everything stored of it, once nothing of it is going (no open run,
   * no proposal waiting, no output streaming) and `runs` is how many runs it holds (the count the caller confirmed).
   * Its connections close here, and on the other servers through the bus.
   */
  async deleteProject(name: string, runs: number): Promise<{ project: ProjectRef; runs: number; closed: number }> {
    const projects = this.deps.repos.projects;
    const row = await projects.findProjectByName(name);
    if (!row) throw new SpoolError("NOT_FOUND", `Project "${name}" does not exist`, { project: name });
    const activity = await projects.projectActivity(row.id, OPEN_RUN, [ENTRY.proposed, ENTRY.streaming]);
    if (activity.openRuns > 0 || activity.liveEntries > 0) {
      throw new SpoolError(
        "CONFLICT",
        `Project "${name}" is not removed: ${activity.openRuns} of its runs are open and ${activity.liveEntries} of its commands wait or run; abort them first (spool abort RUN)`,
        { project: name, open: activity.openRuns, live: activity.liveEntries },
      );
    }
    if (activity.runs !== runs) {
      throw new SpoolError("CONFLICT", `Project "${name}" holds ${activity.runs} runs, not ${runs}: nothing was removed; confirm again with what it holds`, {
        project: name,
        runs: activity.runs,
      });
    }
    if (!(await projects.deleteProject(row.id))) throw new SpoolError("NOT_FOUND", `Project "${name}" does not exist`, { project: name });
    const closed = this.projectDeleted(row.id);
    if (this.deps.bus.shared) this.deps.bus.publish({ t: "project-deleted", project: row.id });
    return { project: { id: row.id, name: row.name, root: row.root }, runs: activity.runs, closed };
  }

  /** Called with a project's id when it is removed (here or on another server): closes its connections, says how many. */
  onDeleted(listener: (projectId: number) => number): void {
    this.#deleted.push(listener);
  }

  /** Tells the listeners a project was removed; how many connections they closed. */
  projectDeleted(projectId: number): number {
    let closed = 0;
    for (const listener of this.#deleted) closed += listener(projectId);
    return closed;
  }

  /**
   * The server's own files are out of every project (issue 37): a root that is the Spool home, lies inside it, or holds
   * it (or the token file, database, socket or a plugin the server loads at start) is refused, since a command writes
   * in its project and the server reads those at its next start. Judged by real paths (a link to the home is the home).
   */
  #checkNotServers(root: string): void {
    const { home, tokenFile, dbFile, socketPath, plugins } = this.deps.config;
    const real = realRoot(root);
    const realHome = realRoot(home);
    const inside = (path: string, dir: string) => dir === "/" || path === dir || path.startsWith(`${dir}/`);
    const held = [home, tokenFile, dbFile, socketPath, ...plugins.filter((p) => isAbsolute(p))].map(realRoot).find((path) => inside(path, real));
    if (inside(real, realHome) || held !== undefined) {
      throw new SpoolError(
        "INVALID_PARAMS",
        `Project root ${root} is refused: it ${inside(real, realHome) ? `is or lies inside the Spool home ${home}` : `holds ${held}`}, the server's own files (its configuration, plugins, token and database, read at its next start), which a command must not be able to write; choose a project directory apart from the home`,
        { root },
      );
    }
  }

  /**
   * A credential scoped to its projects creates one only on a directory apart from every other project's: not the
   * root of a project outside its scope, nor a directory inside one or holding one, where its commands would read and
   * write that project's files. Refused as FORBIDDEN with the root the caller gave, naming no project.
   */
  async #checkApartFromOthers(dir: string, scope: readonly string[] | null): Promise<void> {
    if (scope === null) return;
    const real = realRoot(dir);
    const inside = (path: string, root: string) => root === "/" || path === root || path.startsWith(`${root}/`);
    for (const other of await this.deps.repos.projects.projectRoots()) {
      if (scope.includes(other.name)) continue;
      const theirs = realRoot(other.root);
      if (inside(real, theirs) || inside(theirs, real)) {
        throw new SpoolError(
          "FORBIDDEN",
          `Project root ${dir} is refused: a credential scoped to ${scope.join(", ")} creates projects only in directories apart from other projects' (this one is, holds or lies inside another project's root)`,
          { root: dir },
        );
      }
    }
  }

  #checkRoot(root: string): string {
    if (!isAbsolute(root)) throw new SpoolError("INVALID_PARAMS", `Project root must be an absolute path, got "${root}"`, { root });
    return resolve(root);
  }

  async #freeName(base: string): Promise<string> {
    for (let tries = 0; ; tries += 16) {
      const candidates = nameCandidates(base, tries + 16).slice(tries);
      const taken = await this.deps.repos.projects.takenNames(candidates);
      const free = candidates.find((c) => !taken.has(c));
      if (free) return free;
    }
  }

  /** Every project (at most `limit`), each with how many runs it has, how many are open and how many proposals wait. */
  /** The projects with their counts, by name; `names`: only those (a scoped credential's), null: all. */
  listProjects(limit: number, names: readonly string[] | null = null): Promise<ProjectSummaryRow[]> {
    return this.deps.repos.projects.listProjects(OPEN_RUN, ENTRY.proposed, RUN.paused, limit, names);
  }

  /** Binds the connection to the project; plugins hear of it once the reply is on its way. */
  join(connection: ConnectionHandle, project: ProjectRef, client: { name: string; version: string } | null): void {
    connection.join(project, client);
    setImmediate(() => void this.deps.emit("connection:initialized", { connection, project }));
  }
}

/** The real path of `path`: its deepest existing ancestor resolved through links, then the names not there yet. */
function realRoot(path: string): string {
  const missing: string[] = [];
  for (let current = resolve(path); ; current = dirname(current)) {
    try {
      return join(realpathSync.native(current), ...missing);
    } catch {
      if (dirname(current) === current) return resolve(path);
      missing.unshift(basename(current));
    }
  }
}
