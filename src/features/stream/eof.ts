import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { producerOrder } from "./order.js";

export const streamEof = defineMethod({
  ...methods["stream/eof"],
  ordered: producerOrder,
  handler: (params, ctx) => ctx.core.controls.eof(ctx.project, params),
});
