import { existsSync, statSync } from "node:fs";
import { isAbsolute } from "node:path";
import type { ConnectionHandle, ProjectRef } from "../rpc/connection-context.js";
import { SpoolError } from "../rpc/errors.js";
import { UniqueViolation } from "../store/repositories.js";
import type { CoreDeps } from "./lifecycle.js";

/** Joining a project: found by name, created on first use with its root. */
export class Sessions {
  constructor(private readonly deps: CoreDeps) {}

  async openProject(name: string, root: string | undefined): Promise<ProjectRef> {
    const projects = this.deps.repos.projects;
    const existing = await projects.findProjectByName(name);
    if (existing) {
      if (root !== undefined && root !== existing.root) {
        throw new SpoolError("CONFLICT", `Project "${name}" already has root ${existing.root}`, { root: existing.root });
      }
      return { id: existing.id, name: existing.name, root: existing.root };
    }
    const dir = root ?? this.deps.config.defaultRoot;
    if (!isAbsolute(dir)) throw new SpoolError("CONFLICT", `Project root must be an absolute path, got "${dir}"`);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new SpoolError("NOT_FOUND", `Project root ${dir} is not an existing directory`, { root: dir });
    try {
      const created = await projects.createProject(name, dir);
      return { id: created.id, name: created.name, root: created.root };
    } catch (error) {
      // Two connections created it at once: the other one won, use it.
      if (error instanceof UniqueViolation) return this.openProject(name, root);
      throw error;
    }
  }

  /** Binds the connection to the project; plugins hear of it once the reply is on its way. */
  join(connection: ConnectionHandle, project: ProjectRef, client: { name: string; version: string } | null): void {
    connection.join(project, client);
    setImmediate(() => void this.deps.emit("connection:initialized", { connection, project }));
  }
}
