import { z } from "zod";
import { describeCaller } from "../../core/lifecycle.js";
import { defineMethod } from "../define.js";
import { FinishResult, ProducerParams } from "./finish-result.js";

export const streamCancel = defineMethod({
  name: "stream/cancel",
  description:
    "Anyone in the project asks to stop a producer: channels become 499 at once (the log records who cancelled, `cancelledBy`, the reason and the duration since it was accepted) and `stream/cancelled` goes to every connection of the project, so the owner kills the work. Idempotent.",
  params: z.strictObject({ ...ProducerParams, reason: z.string().max(4096).optional() }),
  result: FinishResult,
  handler: (p, ctx) => ctx.core.lifecycle.cancel(ctx.project, p, p.reason ?? "cancelled", describeCaller(ctx.connection)),
});
