import { inScope } from "../../core/credentials/principals.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { SpoolError } from "../../rpc/errors.js";

export const projectCreate = defineMethod({
  ...methods["project/create"],
  handler: async (params, ctx) => {
    const held = ctx.connection.principal;
    // A scoped admin creates only a project it names, in its scope (a name from the root could be none of its own).
    if (held.projects !== null && (params.name === undefined || !inScope(held, params.name))) {
      throw new SpoolError(
        "FORBIDDEN",
        `"${held.name}" creates only projects of its scope (${held.projects.join(", ")}), named: ${params.name === undefined ? "give name" : `"${params.name}" is not one of them`}`,
        { held: held.role, ...(params.name !== undefined ? { project: params.name } : {}) },
      );
    }
    const project = await ctx.core.sessions.createProject(params.name, params.root, held.projects);
    await ctx.core.audit.byCaller(ctx.connection, { action: "project/create", project: project.name, detail: { name: project.name, root: project.root } });
    return { project: { name: project.name, root: project.root } };
  },
});
