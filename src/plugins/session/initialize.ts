import { existsSync, statSync } from "node:fs";
import { isAbsolute } from "node:path";
import type { Kysely } from "kysely";
import { z } from "zod";
import { SpoolError } from "../../rpc/errors.js";
import { defineMethod } from "../../rpc/method.js";
import { createProject, findProjectByName } from "../../store/projects.js";
import type { Database } from "../../store/schema.js";
import { PROTOCOL_VERSION, SERVER_NAME, SERVER_VERSION } from "../../version.js";
import type { ProjectRef } from "../../rpc/connection-context.js";

export const InitializeParams = z.strictObject({
  project: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "a project name is 1-128 letters, digits, '.', '_' or '-'")
    .describe("Project name; created on first use"),
  root: z.string().min(1).optional().describe("Absolute path of the project's root directory; only used when the project is created"),
  client: z.strictObject({ name: z.string().max(200), version: z.string().max(100) }).optional(),
  protocolVersion: z.string().regex(/^\d+\.\d+$/, "protocolVersion looks like 1.0"),
});

export const InitializeResult = z.object({
  protocolVersion: z.string(),
  server: z.object({ name: z.string(), version: z.string() }),
  projectId: z.number().int(),
  connectionId: z.string(),
});

async function openProject(db: Kysely<Database>, name: string, root: string | undefined, defaultRoot: string): Promise<ProjectRef> {
  const existing = await findProjectByName(db, name);
  if (existing) {
    if (root !== undefined && root !== existing.root) {
      throw new SpoolError("CONFLICT", `Project "${name}" already has root ${existing.root}`, { root: existing.root });
    }
    return { id: existing.id, name: existing.name, root: existing.root };
  }
  const dir = root ?? defaultRoot;
  if (!isAbsolute(dir)) throw new SpoolError("CONFLICT", `Project root must be an absolute path, got "${dir}"`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new SpoolError("NOT_FOUND", `Project root ${dir} is not an existing directory`, { root: dir });
  }
  const created = await createProject(db, name, dir);
  return { id: created.id, name: created.name, root: created.root };
}

export function initializeMethod(deps: { db: Kysely<Database>; defaultRoot: string; joined: (conn: import("../../rpc/connection-context.js").ConnectionHandle, project: ProjectRef) => Promise<void> }) {
  return defineMethod({
    name: "initialize",
    description: "Joins the connection to a project (created on first use). Required before every method except `ping` and `rpc.discover`.",
    access: "none",
    params: InitializeParams,
    result: InitializeResult,
    handler: async (params, ctx) => {
      if (ctx.connection.project) {
        throw new SpoolError("ALREADY_INITIALIZED", `This connection is already initialized for project "${ctx.connection.project.name}"`);
      }
      const [major] = params.protocolVersion.split(".");
      if (major !== PROTOCOL_VERSION.split(".")[0]) {
        throw new SpoolError("UNSUPPORTED", `Protocol version ${params.protocolVersion} is not supported; this server speaks ${PROTOCOL_VERSION}`, {
          supported: PROTOCOL_VERSION,
        });
      }
      const project = await openProject(deps.db, params.project, params.root, deps.defaultRoot);
      ctx.connection.join(project, params.client ?? null);
      // Let plugins (re-sent proposals, …) talk to the connection once the reply is on its way.
      setImmediate(() => void deps.joined(ctx.connection, project));
      return {
        protocolVersion: PROTOCOL_VERSION,
        server: { name: SERVER_NAME, version: SERVER_VERSION },
        projectId: project.id,
        connectionId: ctx.connection.id,
      };
    },
  });
}
