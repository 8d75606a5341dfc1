import { z } from "zod";
import { AGENT_LOOP } from "../../agent/service.js";
import { Run, RunAlias } from "../../core/schemas.js";
import { OPEN_RUN } from "../../core/status.js";
import { SpoolError } from "../../rpc/errors.js";
import { defineMethod } from "../define.js";
import { runView } from "../views.js";

export const runPrompt = defineMethod({
  name: "run/prompt",
  description:
    "Queues a prompt as the run's next loop (FIFO); it starts when the loops before it finish. `run/state` events name the loop they are about by this number.",
  params: z.strictObject({
    run: RunAlias,
    prompt: z
      .string()
      .min(1)
      .max(256 * 1024),
    mode: z.enum(["ask", "act"]).optional(),
    model: z.string().min(1).max(200).optional().describe("Switch the run to this model alias, for this loop and the next ones"),
  }),
  result: z.object({
    run: Run,
    loop: z.number().int().describe("The number of the loop this prompt became"),
    queued: z.number().int().describe("Loops waiting before and including this one"),
  }),
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
    const loop = await agent.prompt(ctx.project, run, params.prompt, params.mode ?? run.mode);
    const queued = await core.repos.loops.countLoopsIn(run.id, OPEN_RUN);
    return { run: runView((await core.repos.runs.findRunById(run.id))!), loop: loop.seq, queued };
  },
});
