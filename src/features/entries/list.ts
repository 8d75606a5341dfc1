import { entrySummary } from "../../core/views.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const entryList = defineMethod({
  ...methods["entry/list"],
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const rows = await ctx.core.entries.list(run.id, { pattern: params.pattern, status: params.status, limit: params.limit ?? 1000 });
    // Each log entry's producer carries all its channels, listed or not: one query for all of them.
    const logs = rows.filter((row) => row.scheme === "log").map((row) => row.id);
    const channels = await ctx.core.entries.channelsByLog(logs);
    const entries = rows.map((row) => entrySummary(row, channels.get(row.id) ?? []));
    // A queued command says where it waits: its queue, its place in line, since when (a query for each, and only those).
    for (const [i, entry] of entries.entries()) if (entry.producer?.state === "queued") entry.producer.queue = await ctx.core.fleet.place(rows[i]!.id);
    return { entries };
  },
});
