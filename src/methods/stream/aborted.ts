import { z } from "zod";
import { Duration } from "../../core/schemas.js";
import { defineMethod } from "../define.js";
import { FinishResult, ProducerParams, producerOrder } from "./finish-result.js";

export const streamAborted = defineMethod({
  name: "stream/aborted",
  description: "The owner gave up (killed, timed out, failed to start): channels become 499 with the reason. Idempotent.",
  params: z.strictObject({ ...ProducerParams, reason: z.string().max(4096).optional(), duration: Duration.optional() }),
  result: FinishResult,
  ordered: producerOrder,
  handler: (p, ctx) =>
    ctx.core.lifecycle.finishByOwner(ctx.connection, ctx.project, p, { kind: "aborted", reason: p.reason ?? "aborted", duration: p.duration }),
});
