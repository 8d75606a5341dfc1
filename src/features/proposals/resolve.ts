import { connectionResolver, describeCaller } from "../../core/lifecycle/index.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { roleAllows } from "../../protocol/roles.js";
import { forbidden } from "../../rpc/errors.js";

export const runResolve = defineMethod({
  ...methods["run/resolve"],
  handler: async (params, ctx) => {
    const target = { run: params.run, path: params.path };
    if (params.decision === "reject") {
      const log = await ctx.core.lifecycle.reject(ctx.project, target, {
        by: describeCaller(ctx.connection),
        resolver: connectionResolver(ctx.connection, params.how),
        reason: params.reason,
      });
      return { path: log.path, status: log.status, runner: null, channels: [] };
    }
    // An agent may withdraw (reject) a proposal of its own runs; accepting is a decision, a person's.
    if (!roleAllows(ctx.connection.principal.role, "person")) throw forbidden("run/resolve (accept)", "person", ctx.connection.principal.role);
    return ctx.core.lifecycle.accept(ctx.connection, ctx.project, target, {
      runner: params.runner,
      reason: params.reason,
      always: params.always,
      how: params.how,
      facts: params.facts,
    });
  },
});
