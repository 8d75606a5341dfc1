import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const notifyAdd = defineMethod({
  ...methods["notify/add"],
  handler: async (params, ctx) => {
    const added = await ctx.core.notifications.add(ctx.connection.principal, params);
    await ctx.core.audit.byCaller(ctx.connection, {
      action: "notify/add",
      detail: { name: added.target.name, url: added.target.url, events: added.target.events, format: added.target.format, projects: added.target.projects },
    });
    return added;
  },
});
