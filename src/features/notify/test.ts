import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const notifyTest = defineMethod({
  ...methods["notify/test"],
  handler: async (params, ctx) => {
    const sent = await ctx.core.notifications.test(ctx.connection.principal, params.name);
    await ctx.core.audit.byCaller(ctx.connection, { action: "notify/test", detail: { name: params.name, ok: sent.ok, status: sent.status } });
    return sent;
  },
});
