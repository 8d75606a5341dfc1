import { inScope } from "../../core/credentials/principals.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const projectList = defineMethod({
  ...methods["project/list"],
  handler: async (params, ctx) => {
    const limit = params.limit ?? 200;
    const principal = ctx.connection.principal;
    // A scoped credential sees only its projects: the query reads those alone.
    const rows = await ctx.core.sessions.listProjects(limit, principal.projects);
    return {
      projects: rows
        .filter((r) => inScope(principal, r.name))
        .map((r) => ({
          name: r.name,
          root: r.root,
          createdAt: r.created_at,
          runs: r.runs,
          open: r.open,
          waiting: r.waiting,
          paused: r.paused,
          updatedAt: r.updated_at,
        })),
    };
  },
});
