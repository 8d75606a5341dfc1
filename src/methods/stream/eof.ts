import { z } from "zod";
import { defineMethod } from "../define.js";
import { ProducerParams, producerOrder } from "./finish-result.js";

export const streamEof = defineMethod({
  name: "stream/eof",
  description:
    "Anyone in the project ends a running producer's input: its stdin pipe is closed (later input is STREAM_CLOSED); under a terminal it types ^D. Relayed to the producer's owner.",
  params: z.strictObject(ProducerParams),
  result: z.object({
    path: z.string().describe("The producer's input channel (channel 0)"),
    changed: z.boolean().describe("False when its input had already been ended"),
  }),
  ordered: producerOrder,
  handler: (params, ctx) => ctx.core.controls.eof(ctx.project, params),
});
