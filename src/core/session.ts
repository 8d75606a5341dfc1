import { existsSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import type { ConnectionHandle, ProjectRef } from "../rpc/connection-context.js";
import { SpoolError } from "../rpc/errors.js";
import type { ProjectSummaryRow } from "../store/projects.js";
import { UniqueViolation } from "../store/repositories.js";
import type { CoreDeps } from "./deps.js";
import { nameCandidates, projectNameFrom } from "./project-name.js";
import { ENTRY, OPEN_RUN } from "./status.js";

/** Joining a project: found by name or by root, created on first use. */
export class Sessions {
  constructor(private readonly deps: CoreDeps) {}

  /**
   * The project a connection asks for: by name (its root must match when one is given), or by its
   * root alone. A missing project is created unless `create` is false: with the given name, or with
   * one derived from the root's directory name, made unique with a "-N" suffix (`created` says so).
   */
  async openProject(want: { name?: string; root?: string; create?: boolean }): Promise<ProjectRef & { created?: true }> {
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
    if (want.create === false) {
      const what = want.name !== undefined ? `Project "${want.name}"` : `A project rooted at ${root}`;
      throw new SpoolError("NOT_FOUND", `${what} does not exist yet`, {
        ...(want.name !== undefined ? { project: want.name } : {}),
        ...(root ? { root } : {}),
      });
    }
    const dir = root ?? this.#checkRoot(this.deps.config.defaultRoot);
    this.#checkNotServers(dir);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new SpoolError("NOT_FOUND", `Project root ${dir} is not an existing directory`, { root: dir });
    const name = want.name ?? (await this.#freeName(projectNameFrom(basename(dir))));
    try {
      const created = await projects.createProject(name, dir);
      return { id: created.id, name: created.name, root: created.root, created: true };
    } catch (error) {
      // Two connections created it at once: the other one won, use it.
      if (error instanceof UniqueViolation) return this.openProject(want);
      throw error;
    }
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
    return this.deps.repos.projects.listProjects(OPEN_RUN, ENTRY.proposed, limit, names);
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
