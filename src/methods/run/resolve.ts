import { z } from "zod";
import { describeCaller } from "../../core/lifecycle.js";
import { EntryPath, ResolvedChannel, RunAlias, Status } from "../../core/schemas.js";
import { defineMethod } from "../define.js";

export const RunResolveParams = z.strictObject({
  run: RunAlias,
  path: EntryPath.describe("The proposal's log entry path"),
  decision: z.enum(["accept", "reject"]),
  reason: z.string().max(4096).optional(),
  runner: z.string().min(1).max(200).optional().describe('Runner to execute it; "self" = the accepting connection owns the producer and streams its output'),
});

export const RunResolveResult = z.object({
  path: z.string(),
  status: Status.describe("The log entry's new status: 200 accepted, 403 rejected"),
  runner: z.string().nullable(),
  channels: z.array(ResolvedChannel),
  resumeToken: z.string().optional().describe('Accepted with runner "self": show it with stream/claim to own the producer again from a new connection'),
});

export const runResolve = defineMethod({
  name: "run/resolve",
  description:
    'Accepts or rejects a pending proposal, from any connection of the project. Accept opens the data channels at 102 and makes the chosen runner (or, with "self", this connection) the producer\'s owner; reject sets the log entry to 403.',
  params: RunResolveParams,
  result: RunResolveResult,
  handler: async (params, ctx) => {
    const target = { run: params.run, path: params.path };
    if (params.decision === "reject") {
      const log = await ctx.core.lifecycle.reject(ctx.project, target, { by: describeCaller(ctx.connection), reason: params.reason });
      return { path: log.path, status: log.status, runner: null, channels: [] };
    }
    return ctx.core.lifecycle.accept(ctx.connection, ctx.project, target, { runner: params.runner, reason: params.reason });
  },
});
