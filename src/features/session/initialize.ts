import { inScope } from "../../core/credentials/principals.js";
import { CONNECTION_TRACEPARENT } from "../../core/observer.js";
import type { Sessions } from "../../core/session.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { nearest } from "../../protocol/nearest.js";
import { lesserRole, type PrincipalRef, roleAllows } from "../../protocol/roles.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { forbidden, SpoolError } from "../../rpc/errors.js";
import { PROTOCOL_VERSION, SERVER_NAME, SERVER_VERSION } from "../../version.js";
import { BINARY_FRAMES, LISTENING } from "./discover.js";

export const initialize = defineMethod({
  ...methods.initialize,
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
    const held = ctx.connection.principal;
    if (params.role !== undefined && !roleAllows(held.role, params.role)) throw forbidden(`initialize with role ${params.role}`, params.role, held.role);
    // A scoped credential joins only its projects: named ones are checked before anything is looked up; a project
    // found by root alone must be one of them, and a refusal names no project the caller did not name itself.
    if (params.project !== undefined && !inScope(held, params.project)) throw outOfScope(held, params.project);
    const { created, ...project } = await openOrCreate(ctx.core.sessions, held, params);
    if (!inScope(held, project.name)) throw outOfScope(held, null, params.root);
    // Created here: the trail keeps who, by which transport, and its root (absolute).
    if (created)
      void ctx.core.audit.byCaller(
        { principal: held, via: ctx.connection.via, clientInfo: params.client },
        { action: "project/create", project: project.name, detail: { name: project.name, root: project.root } },
      );
    if (params.role !== undefined) ctx.connection.principal = { ...held, role: lesserRole(held.role, params.role) };
    ctx.core.sessions.join(ctx.connection, project, params.client ?? null);
    if (params.traceparent) ctx.connection.state.set(CONNECTION_TRACEPARENT, params.traceparent);
    const url = ctx.services.use(LISTENING)();
    return {
      protocolVersion: PROTOCOL_VERSION,
      server: { name: SERVER_NAME, version: SERVER_VERSION, ...(url ? { url } : {}) },
      projectId: project.id,
      project: { name: project.name, root: project.root },
      connectionId: ctx.connection.id,
      binaryFrames: ctx.services.use(BINARY_FRAMES)(),
      principal: ctx.connection.principal,
    };
  },
});

/**
 * The project asked for. Only an admin creates one (SPEC §2: a project's root is the directory its commands write
 * in, so it is the admin's to give); any other credential joins projects that exist, and asking for a new one is
 * FORBIDDEN naming the admin role. A scoped credential asking by root alone learns nothing of other projects:
 * none there and another's are the same refusal.
 */
async function openOrCreate(
  sessions: Pick<Sessions, "openProject" | "listProjects">,
  held: PrincipalRef,
  params: { project?: string; root?: string; create?: boolean },
): Promise<ProjectRef & { created?: true }> {
  const mayCreate = roleAllows(held.role, "admin");
  try {
    // A scoped admin creates only a project it names (checked in scope before): one found by root alone may be none of its own.
    const creates = mayCreate && (held.projects === null || params.project !== undefined);
    return await sessions.openProject({ name: params.project, root: params.root, create: creates ? params.create : false, scope: held.projects });
  } catch (error) {
    if (!(error instanceof SpoolError) || error.errorName !== "NOT_FOUND") throw error;
    // A name alone creates nothing (SPEC §2): whoever asks learns which projects there are to join.
    if (params.root === undefined && params.project !== undefined) throw await unknownProject(sessions, held, params.project);
    if (mayCreate && held.projects === null) throw error;
    if (params.project === undefined && held.projects !== null) throw outOfScope(held, null, params.root);
    if (params.create === false) throw error;
    const what = params.project !== undefined ? `Project "${params.project}"` : `A project rooted at ${params.root}`;
    throw new SpoolError(
      "FORBIDDEN",
      `${what} does not exist, and creating a project (and choosing its root) needs the admin role; this credential ("${held.name}") acts as ${held.role}: ask an admin to create it, then join it`,
      { role: "admin", held: held.role, method: "initialize (create)", ...(params.project !== undefined ? { project: params.project } : {}) },
    );
  }
}

/** NOT_FOUND for a project named that does not exist, naming those the caller may join (and the nearest to the name). */
export async function unknownProject(sessions: Pick<Sessions, "listProjects">, held: PrincipalRef, name: string): Promise<SpoolError> {
  const projects = (await sessions.listProjects(1000, held.projects)).map((p) => p.name).filter((p) => inScope(held, p));
  const near = nearest(name, projects);
  const there = projects.length === 0 ? "there are no projects yet" : `the projects there are: ${projects.join(", ")}`;
  return new SpoolError(
    "NOT_FOUND",
    `Project "${name}" does not exist${near ? ` — did you mean "${near}"?` : ""}; ${there}. A project is created with its root directory: \`spool init\` in that directory, initialize with "root", or project/create`,
    { project: name, projects, ...(near ? { suggestion: near } : {}) },
  );
}

/** A scoped credential outside its projects: names the project only when the caller named it (never one found by root). */
function outOfScope(principal: PrincipalRef, project: string | null, root?: string): SpoolError {
  const which = project !== null ? `project "${project}"` : `a project at ${root ?? "that root"} (none of its projects is rooted there)`;
  return new SpoolError("FORBIDDEN", `"${principal.name}" may not join ${which}: its credential is for ${principal.projects!.join(", ")}`, {
    ...(project !== null ? { project } : {}),
    held: principal.role,
  });
}
