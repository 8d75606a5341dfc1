import { z } from "zod";
import { describeCaller } from "../../core/lifecycle.js";
import { RunAlias } from "../../core/schemas.js";
import { defineMethod } from "../define.js";

export const ProposalCreateParams = z.strictObject({
  run: RunAlias,
  tool: z.string().min(1).describe("A registered producer: sh, env, …"),
  command: z
    .string()
    .min(1)
    .max(64 * 1024)
    .describe("The shell command"),
  cwd: z.string().min(1).max(4096).optional().describe("Working directory, relative to the project root (default: the root)"),
  env: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string())
    .optional()
    .describe("Extra environment variables"),
  timeout_ms: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600 * 1000)
    .optional()
    .describe("Kill the command after this long (default: the server's commandTimeoutMs)"),
});

export const proposalCreate = defineMethod({
  name: "proposal/create",
  description:
    "Proposes a command for a run, exactly as the model would: the log entry is written at 202 and `run/proposal` goes to every connection of the project.",
  params: ProposalCreateParams,
  result: z.object({ path: z.string(), turn: z.number().int() }),
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const row = await ctx.core.lifecycle.propose(ctx.project, run, { ...params, proposedBy: describeCaller(ctx.connection) });
    return { path: row.path, turn: row.turn };
  },
});
