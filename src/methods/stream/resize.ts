import { z } from "zod";
import { TtySize } from "../../runners/protocol.js";
import { defineMethod } from "../define.js";
import { ProducerParams, producerOrder } from "./finish-result.js";

export const streamResize = defineMethod({
  name: "stream/resize",
  description:
    "Anyone in the project resizes the terminal of a producer proposed with `tty` (UNSUPPORTED for one without), relayed to its owner; the log's `tty` attribute keeps the size.",
  params: z.strictObject({ ...ProducerParams, ...TtySize.shape }),
  result: z.object({ path: z.string(), cols: z.number().int(), rows: z.number().int() }),
  ordered: producerOrder,
  handler: (params, ctx) => ctx.core.controls.resize(ctx.project, params, { cols: params.cols, rows: params.rows }),
});
