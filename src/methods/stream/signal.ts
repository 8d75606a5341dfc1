import { z } from "zod";
import { ControlSignal } from "../../runners/protocol.js";
import { defineMethod } from "../define.js";
import { ProducerParams, producerOrder } from "./finish-result.js";

export const streamSignal = defineMethod({
  name: "stream/signal",
  description:
    "Anyone in the project sends a signal to a running producer's process group (INT, TERM, HUP, QUIT, USR1, USR2, WINCH, KILL), relayed to its owner. The producer ends only if the command does.",
  params: z.strictObject({ ...ProducerParams, signal: ControlSignal.describe("The signal's name without SIG") }),
  result: z.object({ path: z.string(), signal: ControlSignal }),
  ordered: producerOrder,
  handler: (params, ctx) => ctx.core.controls.signal(ctx.project, params, params.signal),
});
