import { AGENT_LOOP } from "../../agent/service.js";
import { CONNECTION_TRACEPARENT } from "../../core/observer.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { SpoolError } from "../../rpc/errors.js";

export const runPrompt = defineMethod({
  ...methods["run/prompt"],
  handler: async (params, ctx) => {
    const { core } = ctx;
    let run = await core.lifecycle.requireRun(ctx.project, params.run);
    const agent = ctx.services.use(AGENT_LOOP);
    // Refused for a full queue, an unknown model, no model, or past the principal's prompt bytes, before anything
    // changes (the run's model among it).
    await agent.checkRoom(run);
    if (params.model !== undefined) agent.checkModel(params.model);
    const model = params.model ?? run.model;
    if (!model) throw new SpoolError("UNSUPPORTED", `Run "${run.alias}" has no model; create a run with a model to prompt it`, { run: run.alias });
    core.runs.rates.admit(ctx.connection.principal.name, { prompt: params.prompt });
    if (params.model !== undefined && params.model !== run.model) run = await core.runs.setModel(run, params.model);
    const traceparent = params.traceparent ?? (ctx.connection.state.get(CONNECTION_TRACEPARENT) as string | undefined);
    const loop = await agent.prompt(ctx.project, run, params.prompt, params.mode ?? run.mode, traceparent);
    const queued = await core.runs.openLoops(run.id);
    void core.audit.byCaller(ctx.connection, {
      action: "prompt",
      project: ctx.project.name,
      run: run.alias,
      detail: { loop: loop.seq, model, promptBytes: Buffer.byteLength(params.prompt) },
    });
    return { run: await core.runs.view(await core.runs.reload(run)), loop: loop.seq, queued };
  },
});
