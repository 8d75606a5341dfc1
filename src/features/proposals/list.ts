import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const proposalList = defineMethod({
  ...methods["proposal/list"],
  handler: async (params, ctx) => {
    const { core } = ctx;
    const limit = params.limit ?? 50;
    const runId = params.run === undefined ? undefined : (await core.lifecycle.requireRun(ctx.project, params.run)).id;
    const rows = await core.proposals.pending(ctx.project, { afterId: params.after ?? 0, limit: limit + 1, runId });
    const page = rows.slice(0, limit);
    return {
      proposals: page.map((p) => p.notice),
      next: rows.length > limit ? page.at(-1)!.id : null,
    };
  },
});
