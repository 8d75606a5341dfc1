import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const notifyRemove = defineMethod({
  ...methods["notify/remove"],
  handler: async (params, ctx) => {
    const target = await ctx.core.notifications.remove(params.name);
    await ctx.core.audit.record({
      action: "notify/remove",
      principal: ctx.connection.principal.name,
      client: ctx.connection.clientInfo?.name ?? null,
      detail: { name: target.name, url: target.url, dropped: target.pending },
    });
    return { target };
  },
});
