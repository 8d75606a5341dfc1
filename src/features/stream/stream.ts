import { defineMethod } from "../../plugins/define-method.js";
import { BASE64 } from "../../protocol/common.js";
import { methods } from "../../protocol/methods/index.js";
import { isStreamAck, isStreamParams } from "../../protocol/methods/stream.js";
import { SpoolError } from "../../rpc/errors.js";
import { ORDER_SEP } from "../../rpc/method.js";

export const stream = defineMethod({
  ...methods.stream,
  // Per channel: two channels of one producer (or many producers of one runner) append side by side.
  ordered: (p) => `${p.run}\u0000${p.path}${ORDER_SEP}${p.channel}`,
  // The next chunk of the channel goes into the group commit as soon as this one is in it, not once it is committed.
  pipelined: true,
  // The embedded runner, in process, passes the chunk as the Buffer it read from the process.
  bytes: "chunk",
  // A chunk's params as runners send them, checked without zod's copy (~1.6 KB per chunk); anything else goes to the schema.
  quickParams: (p) => (isStreamParams(p) ? p : undefined),
  quickResult: isStreamAck,
  handler: (params, ctx) => {
    if (ctx.bytes && params.encoding !== undefined) {
      throw new SpoolError("INVALID_PARAMS", "a chunk passed as bytes takes no encoding", { issues: [{ path: "encoding", message: "not with bytes" }] });
    }
    if (params.encoding === "base64" && !BASE64.test(params.chunk)) {
      throw new SpoolError("INVALID_PARAMS", "chunk is not valid base64", { issues: [{ path: "chunk", message: "not valid base64" }] });
    }
    const data = ctx.bytes ?? Buffer.from(params.chunk, params.encoding ?? "utf8");
    const limit = ctx.core.config.limits.maxChunkBytes;
    if (data.length > limit) {
      throw new SpoolError("PAYLOAD_TOO_LARGE", `Chunk of ${data.length} bytes is over the limit of ${limit}; split it`, { limit, bytes: data.length });
    }
    return ctx.core.lifecycle.append(
      ctx.connection,
      ctx.project,
      { run: params.run, path: params.path, channel: params.channel, data, seq: params.seq },
      ctx.admit,
    );
  },
});
