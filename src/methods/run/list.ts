import { z } from "zod";
import { Run, Status } from "../../core/schemas.js";
import { defineMethod } from "../define.js";
import { runView } from "../views.js";

export const runList = defineMethod({
  name: "run/list",
  description: "Runs of the caller's project, newest first.",
  params: z.strictObject({
    status: Status.optional(),
    limit: z.number().int().min(1).max(1000).optional().describe("At most this many (default 100)"),
  }),
  result: z.object({ runs: z.array(Run) }),
  handler: async (params, ctx) => {
    const rows = await ctx.core.repos.runs.listRuns(ctx.project.id, { status: params.status, limit: params.limit ?? 100 });
    return { runs: rows.map(runView) };
  },
});
