import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const notifyTest = defineMethod({
  ...methods["notify/test"],
  handler: (params, ctx) => ctx.core.notifications.test(ctx.connection.principal, params.name),
});
