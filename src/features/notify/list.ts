import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const notifyList = defineMethod({
  ...methods["notify/list"],
  handler: async (_params, ctx) => ({ targets: await ctx.core.notifications.list(ctx.connection.principal) }),
});
