import { z } from "zod";
import { EntrySummary, RunAlias, Status } from "../../core/schemas.js";
import { defineMethod } from "../define.js";
import { entrySummary } from "../views.js";

export const entryList = defineMethod({
  name: "entry/list",
  description: "Entries of a run, oldest first, optionally filtered by a path glob (`*`, `?`) and a status.",
  params: z.strictObject({
    run: RunAlias,
    pattern: z.string().min(1).max(1024).optional().describe("Glob over paths, e.g. sh://turn_2/*"),
    status: Status.optional(),
    limit: z.number().int().min(1).max(10_000).optional().describe("At most this many (default 1000)"),
  }),
  result: z.object({ entries: z.array(EntrySummary) }),
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const rows = await ctx.core.repos.entries.listEntries(run.id, { pattern: params.pattern, status: params.status, limit: params.limit ?? 1000 });
    return { entries: rows.map(entrySummary) };
  },
});
