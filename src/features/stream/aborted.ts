import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { producerOrder } from "./order.js";

export const streamAborted = defineMethod({
  ...methods["stream/aborted"],
  ordered: producerOrder,
  handler: (p, ctx) =>
    ctx.core.lifecycle.finishByOwner(ctx.connection, ctx.project, p, {
      kind: "aborted",
      reason: p.reason ?? "aborted",
      duration: p.duration,
      egress: p.egress,
    }),
});
