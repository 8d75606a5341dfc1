import { AGENT_LOOP } from "../../agent/service.js";
import { CONNECTION_TRACEPARENT } from "../../core/observer.js";
import { OPEN_RUN } from "../../core/status.js";
import { runViewOf } from "../../core/views.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { SpoolError } from "../../rpc/errors.js";

export const runPrompt = defineMethod({
  ...methods["run/prompt"],
  handler: async (params, ctx) => {
    const { core } = ctx;
    let run = await core.lifecycle.requireRun(ctx.project, params.run);
    const agent = ctx.services.use(AGENT_LOOP);
    if (params.model !== undefined) {
      agent.checkModel(params.model);
      if (params.model !== run.model) {
        await core.repos.runs.updateRun(run.id, { model: params.model });
        run = { ...run, model: params.model };
      }
    }
    if (!run.model) throw new SpoolError("UNSUPPORTED", `Run "${run.alias}" has no model; create a run with a model to prompt it`, { run: run.alias });
    const traceparent = params.traceparent ?? (ctx.connection.state.get(CONNECTION_TRACEPARENT) as string | undefined);
    const loop = await agent.prompt(ctx.project, run, params.prompt, params.mode ?? run.mode, traceparent);
    const queued = await core.repos.loops.countLoopsIn(run.id, OPEN_RUN);
    return { run: await runViewOf(core.repos, (await core.repos.runs.findRunById(run.id))!), loop: loop.seq, queued };
  },
});
