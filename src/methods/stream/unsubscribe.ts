import { z } from "zod";
import { notFound } from "../../rpc/errors.js";
import { defineMethod } from "../define.js";

export const streamUnsubscribe = defineMethod({
  name: "stream/unsubscribe",
  description: "Stops a subscription of this connection.",
  params: z.strictObject({ subscription: z.string().min(1) }),
  result: z.object({ unsubscribed: z.literal(true) }),
  handler: (params, ctx) => {
    const sub = ctx.core.watchers.get(params.subscription);
    if (!sub || sub.connection !== ctx.connection) throw notFound(`Subscription "${params.subscription}"`);
    ctx.core.watchers.remove(sub);
    return { unsubscribed: true as const };
  },
});
