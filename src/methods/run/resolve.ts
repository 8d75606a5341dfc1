import { z } from "zod";
import { connectionResolver, describeCaller } from "../../core/lifecycle.js";
import { EntryPath, ResolvedChannel, RunAlias, Status } from "../../core/schemas.js";
import { defineMethod } from "../define.js";

export const RunResolveParams = z
  .strictObject({
    run: RunAlias,
    path: EntryPath.describe("The proposal's log entry path"),
    decision: z.enum(["accept", "reject"]),
    reason: z.string().max(4096).optional(),
    runner: z.string().min(1).max(200).optional().describe('Runner to execute it; "self" = the accepting connection owns the producer and streams its output'),
    always: z
      .boolean()
      .optional()
      .describe(
        'With accept: also store an "always allow" rule in the run, so the server itself accepts later proposals of the same tool with the identical command, cwd and env',
      ),
  })
  .refine((p) => !(p.always && p.decision !== "accept"), { message: "always is only for accept", path: ["always"] });

export const RunResolveResult = z.object({
  path: z.string(),
  status: Status.describe("The log entry's new status: 200 accepted, 403 rejected"),
  runner: z.string().nullable(),
  channels: z.array(ResolvedChannel),
  resumeToken: z.string().optional().describe('Accepted with runner "self": show it with stream/claim to own the producer again from a new connection'),
  rule: z.number().int().optional().describe("The id of the rule stored with `always`"),
});

export const runResolve = defineMethod({
  name: "run/resolve",
  description:
    'Accepts or rejects a pending proposal, from any connection of the project. Accept opens the data channels at 102 and makes the chosen runner (or, with "self", this connection) the producer\'s owner; reject sets the log entry to 403. `always` also stores an "always allow" rule for the run.',
  params: RunResolveParams,
  result: RunResolveResult,
  handler: async (params, ctx) => {
    const target = { run: params.run, path: params.path };
    if (params.decision === "reject") {
      const log = await ctx.core.lifecycle.reject(ctx.project, target, {
        by: describeCaller(ctx.connection),
        resolver: connectionResolver(ctx.connection),
        reason: params.reason,
      });
      return { path: log.path, status: log.status, runner: null, channels: [] };
    }
    return ctx.core.lifecycle.accept(ctx.connection, ctx.project, target, { runner: params.runner, reason: params.reason, always: params.always });
  },
});
