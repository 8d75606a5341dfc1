import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const runList = defineMethod({
  ...methods["run/list"],
  handler: async (params, ctx) => {
    const rows = await ctx.core.runs.list(ctx.project, { status: params.status, limit: params.limit ?? 100 });
    return { runs: await ctx.core.runs.views(rows) };
  },
});
