import { principalView } from "../../core/principals.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const tokenCreate = defineMethod({
  ...methods["token/create"],
  handler: async (params, ctx) => {
    const { token, row } = await ctx.core.principals.create(ctx.connection.principal, params);
    return { token, principal: principalView(row) };
  },
});
