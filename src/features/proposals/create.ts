import { describeCaller } from "../../core/lifecycle.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const proposalCreate = defineMethod({
  ...methods["proposal/create"],
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const row = await ctx.core.lifecycle.propose(ctx.project, run, { ...params, proposedBy: describeCaller(ctx.connection) });
    return { path: row.path, turn: row.turn };
  },
});
