import { principalView } from "../../core/credentials/principals.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const tokenRevoke = defineMethod({
  ...methods["token/revoke"],
  handler: async (params, ctx) => {
    const { row, closed, withdrawn, minted } = await ctx.core.principals.revoke(ctx.connection, params.name);
    await ctx.core.audit.byCaller(ctx.connection, {
      action: "token/revoke",
      detail: { name: row.name, role: row.role, closed, withdrawn, ...(minted.length ? { minted } : {}) },
    });
    return { principal: principalView(row), closed, withdrawn, minted };
  },
});
