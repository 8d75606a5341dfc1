import { CONNECTION_TRACEPARENT } from "../../core/observer.js";
import { inScope } from "../../core/principals.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { lesserRole, type PrincipalRef, roleAllows } from "../../protocol/roles.js";
import { forbidden, SpoolError } from "../../rpc/errors.js";
import { PROTOCOL_VERSION, SERVER_NAME, SERVER_VERSION } from "../../version.js";
import { BINARY_FRAMES } from "./discover.js";

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
    // A scoped credential joins only its projects: named ones are checked before anything is created; a project
    // found by root alone must exist, and is checked by its name.
    if (params.project !== undefined && !inScope(held, params.project)) throw outOfScope(held, params.project);
    const create = held.projects === null || params.project !== undefined ? params.create : false;
    const project = await ctx.core.sessions.openProject({ name: params.project, root: params.root, create });
    if (!inScope(held, project.name)) throw outOfScope(held, project.name);
    if (params.role !== undefined) ctx.connection.principal = { ...held, role: lesserRole(held.role, params.role) };
    ctx.core.sessions.join(ctx.connection, project, params.client ?? null);
    if (params.traceparent) ctx.connection.state.set(CONNECTION_TRACEPARENT, params.traceparent);
    return {
      protocolVersion: PROTOCOL_VERSION,
      server: { name: SERVER_NAME, version: SERVER_VERSION },
      projectId: project.id,
      project: { name: project.name, root: project.root },
      connectionId: ctx.connection.id,
      binaryFrames: ctx.services.use(BINARY_FRAMES)(),
      principal: ctx.connection.principal,
    };
  },
});

function outOfScope(principal: PrincipalRef, project: string): SpoolError {
  return new SpoolError("FORBIDDEN", `"${principal.name}" may not join project "${project}": its credential is for ${principal.projects!.join(", ")}`, {
    project,
    held: principal.role,
  });
}
