import { z } from "zod";
import { proposalNotice } from "../../core/lifecycle.js";
import { ProposalNotice, RunAlias } from "../../core/schemas.js";
import { ENTRY } from "../../core/status.js";
import { defineMethod } from "../define.js";

export const ProposalListParams = z.strictObject({
  run: RunAlias.optional().describe("Only this run's proposals (default: every run of the project)"),
  after: z.number().int().min(0).optional().describe("Continue after this cursor (the `next` of the previous page)"),
  limit: z.number().int().min(1).max(200).optional().describe("Proposals per page (default 50)"),
});

export const proposalList = defineMethod({
  name: "proposal/list",
  description:
    "Lists the project's pending proposals (still proposed), oldest first, a page at a time: what `run/proposal` announced and nobody has decided yet.",
  params: ProposalListParams,
  result: z.object({
    proposals: z.array(ProposalNotice),
    next: z.number().int().nullable().describe("Cursor for the next page; null on the last one"),
  }),
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
