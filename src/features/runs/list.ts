import { runViews } from "../../core/views.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const runList = defineMethod({
  ...methods["run/list"],
  handler: async (params, ctx) => {
    const rows = await ctx.core.repos.runs.listRuns(ctx.project.id, { status: params.status, limit: params.limit ?? 100 });
    return { runs: await runViews(ctx.core.repos, rows) };
  },
});
