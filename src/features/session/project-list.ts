import { inScope } from "../../core/principals.js";
import { ENTRY, OPEN_RUN } from "../../core/status.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const projectList = defineMethod({
  ...methods["project/list"],
  handler: async (params, ctx) => {
    const rows = await ctx.core.repos.projects.listProjects(OPEN_RUN, ENTRY.proposed, params.limit ?? 200);
    // A scoped credential sees only its projects.
    return {
      projects: rows
        .filter((r) => inScope(ctx.connection.principal, r.name))
        .map((r) => ({
          name: r.name,
          root: r.root,
          createdAt: r.created_at,
          runs: r.runs,
          open: r.open,
          waiting: r.waiting,
          updatedAt: r.updated_at,
        })),
    };
  },
});
