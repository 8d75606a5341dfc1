import { AGENT_LOOP } from "../../agent/service.js";
import { RUN } from "../../core/status.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

/** run/budget: a person raises or sets a run's budget; a run paused at it goes on once it is past what the run spent. */
export const runBudget = defineMethod({
  ...methods["run/budget"],
  handler: async (params, ctx) => {
    const { core, project } = ctx;
    const run = await core.lifecycle.requireRun(project, params.run);
    const own = core.budgets.raised(run, project.name, { add: params.add, set: params.set });
    await core.runs.setBudget(run, own);
    let current = await core.runs.reload(run);
    let resumed = false;
    if (current.status === RUN.paused) {
      const agent = ctx.services.use(AGENT_LOOP);
      resumed = !(await agent.stillPaused(project, current)) && (await agent.resume(project, current));
      current = await core.runs.reload(current);
    }
    await core.audit.byCaller(ctx.connection, { action: "budget", project: project.name, run: run.alias, detail: { budget: own, resumed } });
    return { run: await core.runs.view(current), resumed };
  },
});
