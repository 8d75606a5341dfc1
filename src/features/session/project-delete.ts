import { inScope } from "../../core/credentials/principals.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { SpoolError } from "../../rpc/errors.js";

export const projectDelete = defineMethod({
  ...methods["project/delete"],
  handler: async (params, ctx) => {
    const held = ctx.connection.principal;
    if (!inScope(held, params.project)) {
      throw new SpoolError("FORBIDDEN", `"${held.name}" may not remove project "${params.project}": its credential is for ${held.projects!.join(", ")}`, {
        held: held.role,
        project: params.project,
      });
    }
    const { project, runs, closed } = await ctx.core.sessions.deleteProject(params.project, params.runs);
    await ctx.core.audit.byCaller(ctx.connection, {
      action: "project/delete",
      project: project.name,
      detail: { name: project.name, root: project.root, runs, closed },
    });
    return { project: { name: project.name, root: project.root }, runs, closed };
  },
});
