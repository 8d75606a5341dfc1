import { describeCaller } from "../../core/lifecycle.js";
import { methods } from "../../protocol/methods/index.js";
import { defineMethod } from "../define.js";

export const streamCancel = defineMethod({
  ...methods["stream/cancel"],
  handler: (p, ctx) => ctx.core.lifecycle.cancel(ctx.project, p, p.reason ?? "cancelled", describeCaller(ctx.connection)),
});
