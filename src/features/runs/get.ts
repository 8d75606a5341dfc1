import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const runGet = defineMethod({
  ...methods["run/get"],
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const turns = await ctx.core.runs.usage(run.id);
    const sum = (key: keyof (typeof turns)[number]) => turns.reduce((total, t) => total + t[key], 0);
    return {
      run: await ctx.core.runs.view(run),
      usage: {
        promptTokens: sum("promptTokens"),
        completionTokens: sum("completionTokens"),
        totalTokens: sum("totalTokens"),
        cacheReadTokens: sum("cacheReadTokens"),
        cacheWriteTokens: sum("cacheWriteTokens"),
        costUsd: Math.round(sum("costUsd") * 1e6) / 1e6,
        turns,
      },
    };
  },
});
