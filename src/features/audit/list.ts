import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const auditList = defineMethod({
  ...methods["audit/list"],
  handler: async (params, ctx) => ({ events: await ctx.core.audit.list(ctx.connection.principal, params) }),
});
