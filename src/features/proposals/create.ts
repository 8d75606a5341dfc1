import { describeCaller } from "../../core/lifecycle/index.js";
import { CONNECTION_TRACEPARENT } from "../../core/observer.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const proposalCreate = defineMethod({
  ...methods["proposal/create"],
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const traceparent = params.traceparent ?? (ctx.connection.state.get(CONNECTION_TRACEPARENT) as string | undefined);
    const row = await ctx.core.lifecycle.propose(ctx.project, run, {
      ...params,
      traceparent,
      proposedBy: describeCaller(ctx.connection),
      transport: ctx.connection.via,
    });
    return { path: row.path, turn: row.turn };
  },
});
