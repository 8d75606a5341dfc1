import { z } from "zod";
import { AGENT_LOOP } from "../../agent/service.js";
import { Run, RunAlias } from "../../core/schemas.js";
import { conflict } from "../../rpc/errors.js";
import { defineMethod } from "../define.js";
import { runView } from "../views.js";

export const runAbort = defineMethod({
  name: "run/abort",
  description:
    "Stops a run: the model call in flight, its queued loops, its pending proposals (rejected) and its running commands (cancelled; runners kill them). The run ends 499.",
  params: z.strictObject({ run: RunAlias, reason: z.string().max(4096).optional() }),
  result: z.object({ run: Run, rejected: z.array(z.string()), cancelled: z.array(z.string()) }),
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    if (!ctx.core.runs.isOpen(run)) throw conflict(`Run "${run.alias}" is not running (status ${run.status})`, { status: run.status });
    const result = await ctx.services.use(AGENT_LOOP).abort(ctx.project, run, params.reason ?? "run aborted");
    return { run: runView(result.run), rejected: result.rejected, cancelled: result.cancelled };
  },
});
