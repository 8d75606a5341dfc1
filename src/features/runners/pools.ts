import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const runnerPools = defineMethod({
  ...methods["runner/pools"],
  handler: async (_params, ctx) => ({ pools: await ctx.core.fleet.pools(ctx.project) }),
});

export const runnerQueue = defineMethod({
  ...methods["runner/queue"],
  handler: async (params, ctx) => ctx.core.fleet.queue(ctx.project, params.pool, params.limit ?? 100),
});
