import { z } from "zod";
import type { Core } from "../../core/index.js";
import { EntryPath, EntrySummary, RunAlias } from "../../core/schemas.js";
import { channelModelView, renderOptionsFor } from "../../model/model-view.js";
import { renderTerminalText } from "../../model/terminal.js";
import { notFound, SpoolError } from "../../rpc/errors.js";
import { lineCount } from "../../store/repositories.js";
import type { EntryRow } from "../../store/schema.js";
import { defineMethod } from "../define.js";
import { countLines, entrySummary, sliceLines } from "../views.js";

export const EntryGetParams = z
  .strictObject({
    run: RunAlias,
    path: EntryPath,
    tail: z.number().int().min(1).optional().describe("Only the last N lines"),
    line: z.number().int().min(1).optional().describe("First line of a slice (1-based)"),
    limit: z.number().int().min(1).optional().describe("Lines in the slice (default: to the end)"),
    view: z.enum(["raw", "model"]).optional().describe("raw (default): the bytes as stored; model: the text the model sees, as a terminal finally shows it"),
    encoding: z.enum(["utf8", "base64"]).optional().describe("How `body` is encoded (default utf8; invalid UTF-8 becomes U+FFFD)"),
    budget: z
      .number()
      .int()
      .min(50)
      .max(1_000_000)
      .optional()
      .describe(
        "With view model and no tail, line or limit: a budget in tokens for the whole entry, as the agent's own tools read output — a big one is cut to a head and a tail, failure-looking lines of the middle kept with their line numbers, and a note says what was left out (no read limit applies)",
      ),
  })
  .refine((p) => p.budget === undefined || (p.view === "model" && p.tail === undefined && p.line === undefined && p.limit === undefined), {
    message: "budget needs view model and no tail, line or limit",
    path: ["budget"],
  })
  .refine((p) => !(p.tail !== undefined && (p.line !== undefined || p.limit !== undefined)), {
    message: "tail cannot be combined with line or limit",
    path: ["tail"],
  })
  .refine((p) => !(p.view === "model" && p.encoding === "base64"), {
    message: "the model view is text; use encoding utf8",
    path: ["encoding"],
  });

export const EntryGetResult = EntrySummary.extend({
  body: z.string(),
  encoding: z.enum(["utf8", "base64"]),
  range: z.object({ line: z.number().int().describe("First line returned (1-based)"), lines: z.number().int() }),
  truncated: z.boolean().describe("True when maxReadBytes cut the body short"),
});

interface Slice {
  data: Buffer;
  firstLine: number;
  lines: number;
  truncated: boolean;
}

async function readStreamed(core: Core, row: EntryRow, start: number, count: number, whole: boolean): Promise<Slice> {
  const limit = core.config.limits.maxReadBytes;
  if (whole && row.bytes > limit) {
    throw new SpoolError("PAYLOAD_TOO_LARGE", `Entry holds ${row.bytes} bytes, over the read limit of ${limit}; read it with tail or line/limit`, {
      limit,
      bytes: row.bytes,
    });
  }
  const read = await core.repos.chunks.readLines(row.id, start, count, limit);
  return { data: read.data, firstLine: start + 1, lines: read.lines, truncated: read.truncated };
}

function readInline(row: EntryRow, start: number, count: number): Slice {
  const data = sliceLines(Buffer.from(row.body, "utf8"), start, count);
  return { data, firstLine: start + 1, lines: countLines(data), truncated: false };
}

export const entryGet = defineMethod({
  name: "entry/get",
  description: "Reads an entry: its whole body, the last N lines (`tail`), or a line slice (`line`, `limit`), raw or as the model sees it.",
  params: EntryGetParams,
  result: EntryGetResult,
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const row = await ctx.core.repos.entries.findEntry(run.id, params.path);
    if (!row) throw notFound(`Entry "${params.path}"`, { run: params.run, path: params.path });
    const summary = entrySummary(row);
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
    const slice = row.streamed ? await readStreamed(ctx.core, row, start, count, whole) : readInline(row, start, count);
    let body: string;
    const encoding = params.encoding ?? "utf8";
    if (params.view === "model") {
      // What a terminal finally shows of the slice (rendered by a terminal emulator; the whole body within maxReadBytes).
      const cleaned = await renderTerminalText(slice.data.toString("utf8"), renderOptionsFor(row));
      body = (await ctx.core.applyFilter("entry:model-view", { text: cleaned, path: row.path })).text;
    } else {
      body = slice.data.toString(encoding);
    }
    return { ...summary, body, encoding, range: { line: slice.firstLine, lines: slice.lines }, truncated: slice.truncated };
  },
});
