import { principalView } from "../../core/credentials/principals.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const tokenCreate = defineMethod({
  ...methods["token/create"],
  handler: async (params, ctx) => {
    const { token, row } = await ctx.core.principals.create(ctx.connection.principal, params);
    await ctx.core.audit.byCaller(ctx.connection, {
      action: "token/create",
      detail: { name: row.name, role: row.role, projects: params.projects ?? null, expiresAt: params.expiresAt ?? null },
    });
    return { token, principal: principalView(row) };
  },
});
