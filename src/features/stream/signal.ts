import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { producerOrder } from "./order.js";

export const streamSignal = defineMethod({
  ...methods["stream/signal"],
  ordered: producerOrder,
  handler: (params, ctx) => ctx.core.controls.signal(ctx.project, params, params.signal),
});
