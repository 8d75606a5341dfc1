import { z } from "zod";
import { EntryPath, RunAlias } from "../../core/schemas.js";
import { SpoolError } from "../../rpc/errors.js";
import { ORDER_SEP } from "../../rpc/method.js";
import { defineMethod } from "../define.js";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const StreamParams = z.strictObject({
  run: RunAlias,
  path: EntryPath.describe("The producer's log entry path"),
  channel: z.number().int().min(1).describe("1 stdout, 2 stderr, higher for producer-specific streams"),
  chunk: z.string().describe("The bytes to append, encoded as `encoding` says"),
  seq: z.number().int().min(1).optional().describe("The channel's chunk number, from 1; a repeat with the same bytes is acknowledged without appending"),
  encoding: z.enum(["utf8", "base64"]).optional().describe("utf8 (default) or base64 for binary data"),
});

export const stream = defineMethod({
  name: "stream",
  description: "Appends a chunk to one data channel of an accepted producer; only the producer's owner may. Costs the same whatever the channel already holds.",
  params: StreamParams,
  result: z.object({
    channel: z.number().int(),
    seq: z.number().int().describe("The seq this chunk was stored (or had been stored) under"),
    bytes: z.number().int().describe("Bytes the channel holds after the call"),
    duplicate: z.boolean().describe("True when this seq had already been appended with the same bytes; nothing was written"),
  }),
  // Per channel: two channels of one producer (or many producers of one runner) append side by side.
  ordered: (p) => `${p.run}\u0000${p.path}${ORDER_SEP}${p.channel}`,
  // The next chunk of the channel goes into the group commit as soon as this one is in it, not once it is committed.
  pipelined: true,
  // The embedded runner, in process, passes the chunk as the Buffer it read from the process.
  bytes: "chunk",
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
