import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { entrySummary } from "../../store/views.js";

export const entryList = defineMethod({
  ...methods["entry/list"],
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const rows = await ctx.core.repos.entries.listEntries(run.id, { pattern: params.pattern, status: params.status, limit: params.limit ?? 1000 });
    return { entries: rows.map(entrySummary) };
  },
});
