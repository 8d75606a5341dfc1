import { z } from "zod";
import { Run, RunAlias } from "../../core/schemas.js";
import { defineMethod } from "../define.js";
import { runView } from "../views.js";

const Tokens = {
  promptTokens: z.number().int(),
  completionTokens: z.number().int(),
  totalTokens: z.number().int(),
};

/** The tokens the model server reported for a run: totals, and per turn (turns it reported nothing for are absent). */
export const RunUsage = z.object({
  ...Tokens,
  turns: z.array(z.object({ turn: z.number().int(), ...Tokens })),
});

export const runGet = defineMethod({
  name: "run/get",
  description: "One run of the caller's project, with the token usage its model calls reported.",
  params: z.strictObject({ run: RunAlias }),
  result: z.object({ run: Run, usage: RunUsage }),
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const turns = await ctx.core.repos.usage.usageByTurn(run.id);
    const sum = (key: keyof (typeof turns)[number]) => turns.reduce((total, t) => total + t[key], 0);
    return {
      run: runView(run),
      usage: { promptTokens: sum("promptTokens"), completionTokens: sum("completionTokens"), totalTokens: sum("totalTokens"), turns },
    };
  },
});
