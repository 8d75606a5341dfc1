import { z } from "zod";
import { AGENT_LOOP } from "../../agent/service.js";
import { Run, RunAlias } from "../../core/schemas.js";
import { OPEN_RUN } from "../../core/status.js";
import { SpoolError } from "../../rpc/errors.js";
import { defineMethod } from "../define.js";
import { runView } from "../views.js";

export const runPrompt = defineMethod({
  name: "run/prompt",
  description: "Queues a prompt as the run's next loop (FIFO); it starts when the loops before it finish.",
  params: z.strictObject({
    run: RunAlias,
    prompt: z
      .string()
      .min(1)
      .max(256 * 1024),
    mode: z.enum(["ask", "act"]).optional(),
  }),
  result: z.object({ run: Run, queued: z.number().int().describe("Loops waiting before and including this one") }),
  handler: async (params, ctx) => {
    const { core } = ctx;
    const run = await core.lifecycle.requireRun(ctx.project, params.run);
    if (!run.model) throw new SpoolError("UNSUPPORTED", `Run "${run.alias}" has no model; create a run with a model to prompt it`, { run: run.alias });
    await ctx.services.use(AGENT_LOOP).prompt(ctx.project, run, params.prompt, params.mode ?? run.mode);
    const queued = await core.repos.loops.countLoopsIn(run.id, OPEN_RUN);
    return { run: runView((await core.repos.runs.findRunById(run.id))!), queued };
  },
});
