import type { Core } from "../../core/index.js";
import { ENTRY } from "../../core/status.js";
import type { EntryRow } from "../../core/views.js";
import { countLines, entrySummary, type LineReadOptions, lineCount, OffsetPastLine, sliceLines } from "../../core/views.js";
import { channelModelView, renderOptionsFor } from "../../model/model-view.js";
import { renderTerminalText } from "../../model/terminal.js";
import { transcript } from "../../model/transcript.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import type { ConnectionHandle } from "../../rpc/connection-context.js";
import { notFound, SpoolError } from "../../rpc/errors.js";
import type { ReadGrant } from "../../rpc/read-cap.js";
import { JsonStringBytes } from "../../rpc/reply-bytes.js";

interface Slice {
  data: Buffer;
  /** The body is part of line `firstLine` (LineRead.part). */
  part?: { offset: number; bytes: number; end: boolean };
  /** The bytes in pieces, when `data` is joined only if asked for (LineRead.parts). */
  parts?: readonly Buffer[];
  bytes: number;
  firstLine: number;
  lines: number;
  truncated: boolean;
  /** The bytes it holds under the read cap (streamed entries). */
  grant?: ReadGrant;
}

/**
 * Reads lines of a streamed entry once the server's cap on reads in flight
 * has room for them (limits.maxReadBytesInFlight): as many bytes as the read
 * may return at most (the entry's bytes once it is finished, else
 * maxReadBytes), cut to what it returned. The caller gives the grant back
 * once the reply has left the process.
 */
async function readStreamed(
  core: Core,
  connection: ConnectionHandle,
  row: EntryRow,
  start: number,
  count: number,
  whole: boolean,
  offset: number | undefined,
): Promise<Slice> {
  const limit = core.config.limits.maxReadBytes;
  if (whole && row.bytes > limit) {
    throw new SpoolError("PAYLOAD_TOO_LARGE", `Entry holds ${row.bytes} bytes, over the read limit of ${limit}; read it with tail or line/limit`, {
      limit,
      bytes: row.bytes,
    });
  }
  // At most what the read may return: the entry's bytes once it is finished, else maxReadBytes.
  const most = row.status === ENTRY.streaming ? limit : Math.min(limit, row.bytes);
  // A few lines of a large entry (a tail, a slice) ask for a few times their share of its bytes, not for `most`;
  // a read that turns out longer is made again with `most`.
  const total = lineCount(row);
  const wanted = Math.min(count, Math.max(0, total - start));
  const guess = total > 0 ? Math.ceil((row.bytes / total) * wanted * 4) + FEW_LINES_BYTES : FEW_LINES_BYTES;
  let grant = await core.reads.acquire(connection, Math.min(most, guess));
  // A slice cut by the limit ends after a whole line; a line longer than the limit comes in parts (offset).
  const options = { wholeLines: true, ...(offset !== undefined ? { offset } : {}) };
  try {
    let read = await readLinesOf(core, row, start, count, Math.min(limit, grant.bytes), options);
    if (read.truncated && grant.bytes < limit) {
      grant.release();
      grant = await core.reads.acquire(connection, limit);
      read = await readLinesOf(core, row, start, count, limit, options);
    }
    const bytes = read.parts ? read.parts.reduce((sum, part) => sum + part.length, 0) : read.data.length;
    grant.shrink(bytes);
    return {
      // Joined when asked for: a body sent as bytes never is.
      get data() {
        return read.data;
      },
      parts: read.parts,
      bytes,
      firstLine: start + 1,
      lines: read.lines,
      truncated: read.truncated,
      ...(read.part ? { part: read.part } : {}),
      grant,
    };
  } catch (error) {
    grant.release();
    throw error;
  }
}

/** A command's output and what was typed to it, in stored order (view "transcript"), within maxReadBytes. */
async function transcriptOf(core: Core, row: EntryRow, encoding: "utf8" | "base64") {
  if (row.scheme !== "log")
    throw new SpoolError("INVALID_PARAMS", `view "transcript" reads a command's log path (log://…), not ${row.path}`, { path: row.path });
  const channels = await core.entries.channels(row.id);
  const input = new Set(channels.filter((c) => c.channel === 0).map((c) => c.id));
  const read = await core.entries.readInOrder(
    channels.map((c) => c.id),
    core.config.limits.maxReadBytes,
  );
  const text = transcript(read.chunks.map((c) => ({ input: input.has(c.entryId), data: c.data })));
  const body = encoding === "base64" ? Buffer.from(text).toString("base64") : text;
  return { body, encoding, range: { line: 1, lines: countLines(Buffer.from(text)) }, truncated: read.truncated };
}

/** The store's line read; an offset past its line's end is the caller's mistake, said as such. */
async function readLinesOf(core: Core, row: EntryRow, start: number, count: number, maxBytes: number, options: LineReadOptions) {
  try {
    return await core.entries.readLines(row.id, start, count, maxBytes, options);
  } catch (error) {
    if (!(error instanceof OffsetPastLine)) throw error;
    throw new SpoolError("INVALID_PARAMS", `offset ${options.offset} is past the end of line ${start + 1}: it holds ${error.lineBytes} bytes`, {
      line: start + 1,
      lineBytes: error.lineBytes,
    });
  }
}

/** A body from this many bytes up is sent as bytes (src/rpc/reply-bytes.ts); a smaller one as a string. */
export const BODY_AS_BYTES = 16 * 1024;

/** What a read of a few lines asks the cap for besides its share of the entry's bytes. */
const FEW_LINES_BYTES = 64 * 1024;

function readInline(row: EntryRow, start: number, count: number, offset: number | undefined): Slice {
  if (offset !== undefined) {
    const line = sliceLines(Buffer.from(row.body, "utf8"), start, 1);
    if (offset > 0 && offset >= line.length) {
      throw new SpoolError("INVALID_PARAMS", `offset ${offset} is past the end of line ${start + 1}: it holds ${line.length} bytes`, {
        line: start + 1,
        lineBytes: line.length,
      });
    }
    const data = line.subarray(offset);
    return { data, bytes: data.length, firstLine: start + 1, lines: 0, truncated: false, part: { offset, bytes: data.length, end: true } };
  }
  const data = sliceLines(Buffer.from(row.body, "utf8"), start, count);
  return { data, bytes: data.length, firstLine: start + 1, lines: countLines(data), truncated: false };
}

export const entryGet = defineMethod({
  ...methods["entry/get"],
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const row = await ctx.core.entries.find(run.id, params.path);
    if (!row) throw notFound(`Entry "${params.path}"`, { run: params.run, path: params.path });
    const summary = entrySummary(row, row.scheme === "log" ? await ctx.core.entries.channels(row.id) : []);
    if (summary.producer?.state === "queued") summary.producer.queue = await ctx.core.fleet.place(row.id);
    if (params.budget !== undefined && row.streamed) {
      const view = await channelModelView(ctx.core.entries.readLines, row, params.budget, { failurePatterns: ctx.core.config.agent.failurePatterns });
      const text = (await ctx.core.applyFilter("entry:model-view", { text: view.text, path: row.path })).text;
      return { ...summary, body: text, encoding: "utf8" as const, range: { line: 1, lines: lineCount(row) }, truncated: false };
    }
    if (params.view === "transcript") return { ...summary, ...(await transcriptOf(ctx.core, row, params.encoding ?? "utf8")) };
    const total = row.streamed ? lineCount(row) : summary.lines;
    let start = 0;
    let count = Number.MAX_SAFE_INTEGER;
    if (params.tail !== undefined) start = Math.max(0, total - params.tail);
    if (params.line !== undefined) start = params.line - 1;
    if (params.limit !== undefined) count = params.limit;
    const whole = params.tail === undefined && params.line === undefined && params.limit === undefined;
    const slice = row.streamed
      ? await readStreamed(ctx.core, ctx.connection, row, start, count, whole, params.offset)
      : readInline(row, start, count, params.offset);
    try {
      let body: string;
      const encoding = params.encoding ?? "utf8";
      if (params.view === "model") {
        // What a terminal finally shows of the slice (rendered by a terminal emulator; the whole body within maxReadBytes).
        const cleaned = await renderTerminalText(slice.data.toString("utf8"), renderOptionsFor(row));
        body = (await ctx.core.applyFilter("entry:model-view", { text: cleaned, path: row.path })).text;
      } else if (ctx.reply && slice.bytes >= BODY_AS_BYTES) {
        // A large body goes into the reply's bytes from the rows it was read from: no joined copy, no string of it nor of the reply.
        ctx.reply.setField("body", new JsonStringBytes(slice.parts ?? slice.data, encoding));
        body = "";
      } else {
        body = slice.data.toString(encoding);
      }
      // Its bytes count until the message carrying the reply has left the process. In a batch they are let go
      // while the batch's other calls run (which may read too) and count again from when the batch's reply is sent.
      const grant = slice.grant;
      if (grant) {
        if (ctx.reply?.batched) ctx.reply.onSent(grant.defer());
        else if (ctx.reply) ctx.reply.onSent(() => grant.releaseWhenFlushed());
        else setImmediate(() => grant.releaseWhenFlushed());
      }
      return {
        ...summary,
        body,
        encoding,
        range: { line: slice.firstLine, lines: slice.lines },
        truncated: slice.truncated,
        ...(slice.part ? { part: slice.part } : {}),
      };
    } catch (error) {
      slice.grant?.release();
      throw error;
    }
  },
});
