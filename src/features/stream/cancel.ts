import { describeCaller } from "../../core/lifecycle/index.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const streamCancel = defineMethod({
  ...methods["stream/cancel"],
  handler: (p, ctx) => ctx.core.lifecycle.cancel(ctx.project, p, p.reason, describeCaller(ctx.connection), ctx.connection.via),
});
