import { principalView } from "../../core/principals.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const tokenRevoke = defineMethod({
  ...methods["token/revoke"],
  handler: async (params, ctx) => {
    const { row, closed } = await ctx.core.principals.revoke(params.name);
    await ctx.core.audit.record({
      action: "token/revoke",
      principal: ctx.connection.principal.name,
      client: ctx.connection.clientInfo?.name ?? null,
      detail: { name: row.name, role: row.role, closed },
    });
    return { principal: principalView(row), closed };
  },
});
