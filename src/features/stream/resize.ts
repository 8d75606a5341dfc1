import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { producerOrder } from "./order.js";

export const streamResize = defineMethod({
  ...methods["stream/resize"],
  ordered: producerOrder,
  handler: (params, ctx) => ctx.core.controls.resize(ctx.project, params, { cols: params.cols, rows: params.rows }),
});
