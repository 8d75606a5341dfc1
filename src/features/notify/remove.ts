import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const notifyRemove = defineMethod({
  ...methods["notify/remove"],
  handler: async (params, ctx) => {
    const target = await ctx.core.notifications.remove(ctx.connection.principal, params.name);
    await ctx.core.audit.byCaller(ctx.connection, {
      action: "notify/remove",
      detail: { name: target.name, url: target.url, dropped: target.pending },
    });
    return { target };
  },
});
