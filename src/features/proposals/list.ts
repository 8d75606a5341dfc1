import { proposalNotice } from "../../core/lifecycle.js";
import { ENTRY } from "../../core/status.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const proposalList = defineMethod({
  ...methods["proposal/list"],
  handler: async (params, ctx) => {
    const { core } = ctx;
    const limit = params.limit ?? 50;
    const runId = params.run === undefined ? undefined : (await core.lifecycle.requireRun(ctx.project, params.run)).id;
    const rows = await core.repos.entries.listProjectLogsAt(ctx.project.id, ENTRY.proposed, { afterId: params.after ?? 0, limit: limit + 1, runId });
    const page = rows.slice(0, limit);
    return {
      proposals: page.map((row) => proposalNotice(row.alias, row)),
      next: rows.length > limit ? page.at(-1)!.id : null,
    };
  },
});
