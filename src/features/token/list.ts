import { principalView } from "../../core/credentials/principals.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const tokenList = defineMethod({
  ...methods["token/list"],
  handler: async (params, ctx) => ({
    principals: (await ctx.core.principals.list(ctx.connection.principal, { revoked: params.revoked ?? false })).map(principalView),
  }),
});
