import { z } from "zod";
import { SpoolError } from "../../rpc/errors.js";
import { defineMethod } from "../define.js";
import { ProducerParams, producerOrder } from "./finish-result.js";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const streamInput = defineMethod({
  name: "stream/input",
  description:
    "Anyone in the project sends bytes to a running producer's stdin (or terminal): the server relays them to the producer's owner, then stores them as its channel 0. Ordered per producer; a repeated `seq` with the same bytes is acknowledged without sending them again.",
  params: z.strictObject({
    ...ProducerParams,
    data: z.string().min(1).describe("The bytes, encoded as `encoding` says (at most limits.maxInputBytes decoded)"),
    encoding: z.enum(["utf8", "base64"]).optional().describe("utf8 (default) or base64 for other bytes"),
    seq: z.number().int().min(1).optional().describe("Channel 0's next chunk number, for safe retries; without it the input gets the next one"),
  }),
  result: z.object({
    path: z.string().describe("The producer's input channel (channel 0)"),
    seq: z.number().int().describe("The seq this input was stored (or had been stored) under"),
    bytes: z.number().int().describe("Bytes of input the producer has been sent in all"),
    duplicate: z.boolean().describe("True when this seq had already been sent with the same bytes; nothing was sent again"),
  }),
  ordered: producerOrder,
  handler: (params, ctx) => {
    if (params.encoding === "base64" && !BASE64.test(params.data)) {
      throw new SpoolError("INVALID_PARAMS", "data is not valid base64", { issues: [{ path: "data", message: "not valid base64" }] });
    }
    const data = Buffer.from(params.data, params.encoding ?? "utf8");
    return ctx.core.controls.input(ctx.project, params, data, params.seq);
  },
});
