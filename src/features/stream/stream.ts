import type { z } from "zod";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import type { StreamParams } from "../../protocol/methods/stream.js";
import { SpoolError } from "../../rpc/errors.js";
import { ORDER_SEP } from "../../rpc/method.js";

type StreamParamsOutput = z.output<typeof StreamParams>;
const STREAM_KEYS = new Set(["run", "path", "channel", "chunk", "seq", "encoding"]);
const RUN_ALIAS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ENTRY_PATH = /^[a-z][a-z0-9+.-]*:\/\/[^\0]*$/;

/** True only when StreamParams would accept these params as they are (its rules: RunAlias, EntryPath, the ranges). */
function quickStreamParams(p: unknown): boolean {
  if (typeof p !== "object" || p === null || Array.isArray(p) || Object.getPrototypeOf(p) !== Object.prototype) return false;
  for (const key in p) if (!STREAM_KEYS.has(key)) return false;
  const { run, path, channel, chunk, seq, encoding } = p as Record<string, unknown>;
  return (
    typeof run === "string" &&
    RUN_ALIAS.test(run) &&
    typeof path === "string" &&
    path.length >= 1 &&
    path.length <= 1024 &&
    ENTRY_PATH.test(path) &&
    Number.isSafeInteger(channel) &&
    (channel as number) >= 1 &&
    typeof chunk === "string" &&
    (seq === undefined || (Number.isSafeInteger(seq) && (seq as number) >= 1)) &&
    (encoding === undefined || encoding === "utf8" || encoding === "base64")
  );
}

/** True only when the result is an ack exactly as the result schema gives it: channel, seq, bytes, duplicate, in that order. */
function quickStreamResult(r: unknown): boolean {
  if (typeof r !== "object" || r === null || Object.getPrototypeOf(r) !== Object.prototype) return false;
  let i = 0;
  for (const key in r) if (key !== ACK_KEYS[i++]) return false;
  const { channel, seq, bytes, duplicate } = r as Record<string, unknown>;
  return i === ACK_KEYS.length && Number.isSafeInteger(channel) && Number.isSafeInteger(seq) && Number.isSafeInteger(bytes) && typeof duplicate === "boolean";
}
const ACK_KEYS = ["channel", "seq", "bytes", "duplicate"];

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const stream = defineMethod({
  ...methods.stream,
  // Per channel: two channels of one producer (or many producers of one runner) append side by side.
  ordered: (p) => `${p.run}\u0000${p.path}${ORDER_SEP}${p.channel}`,
  // The next chunk of the channel goes into the group commit as soon as this one is in it, not once it is committed.
  pipelined: true,
  // The embedded runner, in process, passes the chunk as the Buffer it read from the process.
  bytes: "chunk",
  // A chunk's params as runners send them, checked without zod's copy (~1.6 KB per chunk); anything else goes to the schema.
  quickParams: (p) => (quickStreamParams(p) ? (p as StreamParamsOutput) : undefined),
  quickResult: quickStreamResult,
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
