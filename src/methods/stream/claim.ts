import { z } from "zod";
import { Status } from "../../core/schemas.js";
import { defineMethod } from "../define.js";
import { ProducerParams } from "./finish-result.js";

export const streamClaim = defineMethod({
  name: "stream/claim",
  description:
    'Takes ownership of a producer with its resume token (from run/resolve with runner "self"), e.g. after a reconnect or a server restart; the reply has each channel\'s last stored seq, to resend what follows.',
  params: z.strictObject({ ...ProducerParams, token: z.string().min(16).max(200).describe("The resume token run/resolve returned") }),
  result: z.object({
    path: z.string(),
    status: Status.describe("102 while the producer is open (you now own it); its terminal status otherwise"),
    channels: z.array(z.object({ channel: z.number().int(), path: z.string(), status: Status, lastSeq: z.number().int() })),
  }),
  handler: (p, ctx) => ctx.core.lifecycle.claim(ctx.connection, ctx.project, p, p.token),
});
