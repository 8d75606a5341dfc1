import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const streamClaim = defineMethod({
  ...methods["stream/claim"],
  handler: (p, ctx) => ctx.core.lifecycle.claim(ctx.connection, ctx.project, p, p.token),
});
