import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { producerOrder } from "./order.js";

export const streamCompleted = defineMethod({
  ...methods["stream/completed"],
  ordered: producerOrder,
  handler: (p, ctx) =>
    ctx.core.lifecycle.finishByOwner(ctx.connection, ctx.project, p, {
      kind: "completed",
      exit_code: p.exit_code,
      signal: p.signal,
      duration: p.duration,
      egress: p.egress,
    }),
});
