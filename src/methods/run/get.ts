import { z } from "zod";
import { Run, RunAlias } from "../../core/schemas.js";
import { defineMethod } from "../define.js";
import { runView } from "../views.js";

export const runGet = defineMethod({
  name: "run/get",
  description: "One run of the caller's project.",
  params: z.strictObject({ run: RunAlias }),
  result: z.object({ run: Run }),
  handler: async (params, ctx) => ({ run: runView(await ctx.core.lifecycle.requireRun(ctx.project, params.run)) }),
});
