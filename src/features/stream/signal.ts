import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { producerOrder } from "./order.js";

export const streamSignal = defineMethod({
  ...methods["stream/signal"],
  ordered: producerOrder,
  handler: async (params, ctx) => {
    const sent = await ctx.core.controls.signal(ctx.project, params, params.signal);
    void ctx.core.audit.byCaller(ctx.connection, {
      action: "signal",
      project: ctx.project.name,
      run: params.run,
      path: params.path,
      detail: { signal: params.signal },
    });
    return sent;
  },
});
