import { z } from "zod";
import { AGENT_LOOP } from "../../agent/service.js";
import { Run, RunAlias } from "../../core/schemas.js";
import { conflict } from "../../rpc/errors.js";
import { defineMethod } from "../define.js";
import { runView } from "../views.js";

export const runAbort = defineMethod({
  name: "run/abort",
  description:
    "Stops a run: the model call in flight, its queued loops, its pending proposals (rejected) and its running commands (cancelled; runners kill them), including commands started in the background by a turn that has ended. The run ends 499. A run with nothing left to stop is CONFLICT.",
  params: z.strictObject({ run: RunAlias, reason: z.string().max(4096).optional() }),
  result: z.object({ run: Run, rejected: z.array(z.string()), cancelled: z.array(z.string()) }),
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    if (!ctx.core.runs.isOpen(run) && !(await ctx.core.runs.hasOpenWork(run.id))) {
      throw conflict(`Run "${run.alias}" is not running and has no command or proposal left to stop (status ${run.status})`, { status: run.status });
    }
    const result = await ctx.services.use(AGENT_LOOP).abort(ctx.project, run, params.reason ?? "run aborted");
    return { run: runView(result.run), rejected: result.rejected, cancelled: result.cancelled };
  },
});
