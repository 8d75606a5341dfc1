import type { Core } from "../../core/index.js";
import { ENTRY } from "../../core/status.js";
import type { EntryRow } from "../../core/views.js";
import { countLines, entrySummary, lineCount, sliceLines } from "../../core/views.js";
import { channelModelView, renderOptionsFor } from "../../model/model-view.js";
import { renderTerminalText } from "../../model/terminal.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import type { ConnectionHandle } from "../../rpc/connection-context.js";
import { notFound, SpoolError } from "../../rpc/errors.js";
import type { ReadGrant } from "../../rpc/read-cap.js";
import { JsonStringBytes } from "../../rpc/reply-bytes.js";
import { cutLines } from "../../store/chunk-reads.js";

interface Slice {
  data: Buffer;
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
async function readStreamed(core: Core, connection: ConnectionHandle, row: EntryRow, start: number, count: number, whole: boolean): Promise<Slice> {
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
  try {
    let read = await core.repos.chunks.readLines(row.id, start, count, Math.min(limit, grant.bytes));
    if (read.truncated && grant.bytes < limit) {
      grant.release();
      grant = await core.reads.acquire(connection, limit);
      read = await core.repos.chunks.readLines(row.id, start, count, limit);
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
      grant,
    };
  } catch (error) {
    grant.release();
    throw error;
  }
}

/** A body from this many bytes up is sent as bytes (src/rpc/reply-bytes.ts); a smaller one as a string. */
export const BODY_AS_BYTES = 16 * 1024;

/** What a read of a few lines asks the cap for besides its share of the entry's bytes. */
const FEW_LINES_BYTES = 64 * 1024;

function readInline(row: EntryRow, start: number, count: number): Slice {
  const data = sliceLines(Buffer.from(row.body, "utf8"), start, count);
  return { data, bytes: data.length, firstLine: start + 1, lines: countLines(data), truncated: false };
}

/**
 * Runs, on made-up values, what the first tail or slice after a start would otherwise run for the first time:
 * zod compiles a schema's parser on its first parse (entry/get's params and result: ~1.5 ms of the first read's
 * ~4 ms of CPU after a 1 GB ingest; bench/README.md "Issue 24, the first read after a start"), and V8 compiles a
 * function on its first call (the line cutter, the summary). The store's read statements are prepared when the
 * repositories are made (sync-reads.ts). The server runs this once it listens (entries plugin); true when every
 * sample was valid (a test holds them to the schemas, so they take the paths real reads take).
 */
export function warmEntryGet(): boolean {
  const { params, result } = methods["entry/get"];
  const tail = params.safeParse({ run: "warm", path: "sh://turn_1/warm_1", tail: 20 });
  const slice = params.safeParse({ run: "warm", path: "sh://turn_1/warm_1", line: 3, limit: 20 });
  const data = Buffer.from("warm 1\nwarm 2\nwarm 3\n");
  const parts = [
    { newlines: 3, data },
    { newlines: 3, data },
  ];
  const read = cutLines(parts, 2, 3, 1024);
  const one = cutLines(parts, 0, 2, 1024);
  const row: EntryRow = {
    id: 0,
    run_id: 0,
    path: "sh://turn_1/warm_1",
    scheme: "sh",
    turn: 1,
    status: ENTRY.done,
    attributes: JSON.stringify({ channel: 1, name: "stdout", log: "log://turn_1/warm" }),
    body: "",
    streamed: 1,
    producer_id: 0,
    channel: 1,
    bytes: data.length * 2,
    newlines: 6,
    ends_with_newline: 1,
    last_seq: 2,
    created_at: 0,
    updated_at: 0,
  };
  const reply = {
    ...entrySummary(row),
    body: read.data.toString("utf8") + one.data.toString("utf8"),
    encoding: "utf8" as const,
    range: { line: 3, lines: read.lines },
    truncated: read.truncated,
  };
  return tail.success && slice.success && result.safeParse(reply).success && lineCount(row) === 6;
}

export const entryGet = defineMethod({
  ...methods["entry/get"],
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const row = await ctx.core.repos.entries.findEntry(run.id, params.path);
    if (!row) throw notFound(`Entry "${params.path}"`, { run: params.run, path: params.path });
    const summary = entrySummary(row, row.scheme === "log" ? await ctx.core.repos.entries.listChannels(row.id) : []);
    if (params.budget !== undefined && row.streamed) {
      const view = await channelModelView(ctx.core.repos.chunks.readLines, row, params.budget, { failurePatterns: ctx.core.config.agent.failurePatterns });
      const text = (await ctx.core.applyFilter("entry:model-view", { text: view.text, path: row.path })).text;
      return { ...summary, body: text, encoding: "utf8" as const, range: { line: 1, lines: lineCount(row) }, truncated: false };
    }
    const total = row.streamed ? lineCount(row) : summary.lines;
    let start = 0;
    let count = Number.MAX_SAFE_INTEGER;
    if (params.tail !== undefined) start = Math.max(0, total - params.tail);
    if (params.line !== undefined) start = params.line - 1;
    if (params.limit !== undefined) count = params.limit;
    const whole = params.tail === undefined && params.line === undefined && params.limit === undefined;
    const slice = row.streamed ? await readStreamed(ctx.core, ctx.connection, row, start, count, whole) : readInline(row, start, count);
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
      return { ...summary, body, encoding, range: { line: slice.firstLine, lines: slice.lines }, truncated: slice.truncated };
    } catch (error) {
      slice.grant?.release();
      throw error;
    }
  },
});
