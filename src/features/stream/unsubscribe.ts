import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { notFound } from "../../rpc/errors.js";

export const streamUnsubscribe = defineMethod({
  ...methods["stream/unsubscribe"],
  handler: (params, ctx) => {
    const sub = ctx.core.watchers.get(params.subscription);
    if (!sub || sub.connection !== ctx.connection) throw notFound(`Subscription "${params.subscription}"`);
    ctx.core.watchers.remove(sub);
    return { unsubscribed: true as const };
  },
});
