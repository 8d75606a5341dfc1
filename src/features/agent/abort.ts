import { AGENT_LOOP } from "../../agent/service.js";
import { runStatusWord } from "../../core/status.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { conflict } from "../../rpc/errors.js";

export const runAbort = defineMethod({
  ...methods["run/abort"],
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    if (!ctx.core.runs.isOpen(run) && !(await ctx.core.runs.hasOpenWork(run.id))) {
      throw conflict(`Run "${run.alias}" is not running and has no command or proposal left to stop (it is ${runStatusWord(run.status)})`, {
        status: run.status,
      });
    }
    const result = await ctx.services.use(AGENT_LOOP).abort(ctx.project, run, params.reason ?? "run aborted");
    await ctx.core.audit.byCaller(ctx.connection, {
      action: "abort",
      project: ctx.project.name,
      run: run.alias,
      detail: { reason: params.reason ?? null, rejected: result.rejected, cancelled: result.cancelled },
    });
    return { run: await ctx.core.runs.view(result.run), rejected: result.rejected, cancelled: result.cancelled };
  },
});
