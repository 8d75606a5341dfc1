import { z } from "zod";
import { Duration } from "../../core/schemas.js";
import { defineMethod } from "../define.js";
import { FinishResult, ProducerParams, producerOrder } from "./finish-result.js";

export const streamCompleted = defineMethod({
  name: "stream/completed",
  description:
    "The owner reports the producer finished: every channel becomes 200 (exit 0 or no exit code) or 500 (non-zero exit or a signal). Idempotent: once finished, it reports the status and changes nothing.",
  params: z.strictObject({
    ...ProducerParams,
    exit_code: z.number().int().nullable().optional().describe("Exit code; null or absent when unknown"),
    signal: z
      .string()
      .regex(/^SIG[A-Z0-9]+$/)
      .nullable()
      .optional()
      .describe("Signal that ended the process, e.g. SIGKILL"),
    duration: Duration.optional(),
  }),
  result: FinishResult,
  ordered: producerOrder,
  handler: (p, ctx) =>
    ctx.core.lifecycle.finishByOwner(ctx.connection, ctx.project, p, { kind: "completed", exit_code: p.exit_code, signal: p.signal, duration: p.duration }),
});
