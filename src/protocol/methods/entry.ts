import { z } from "zod";
import { EntryPath, EntrySummary, RunAlias, Status } from "../common.js";
import { request } from "../define.js";
import { SEARCH_DEFAULT_MATCHES, SEARCH_MAX_CONTEXT, SEARCH_MAX_MATCHES, SEARCH_MAX_PATTERN } from "../search-lines.js";

export const EntryGetParams = z
  .strictObject({
    run: RunAlias,
    path: EntryPath,
    tail: z.number().int().min(1).optional().describe("Only the last N lines"),
    line: z.number().int().min(1).optional().describe("First line of a slice (1-based)"),
    limit: z.number().int().min(1).optional().describe("Lines in the slice (default: to the end)"),
    offset: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("With `line`: the rest of that one line from this byte of it (the next `part` of a line longer than the read limit)"),
    view: z
      .enum(["raw", "model", "transcript"])
      .optional()
      .describe(
        "raw (default): the bytes as stored; model: the text the model sees, as a terminal finally shows it; transcript (a command's log path): its output with the lines typed to it, in the order it happened, each typed line after `[typed] `",
      ),
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
  .refine((p) => p.offset === undefined || (p.line !== undefined && p.limit === undefined && p.budget === undefined), {
    message: "offset needs line, and reads the rest of that one line: no limit",
    path: ["offset"],
  })
  .refine((p) => p.view !== "transcript" || (p.tail === undefined && p.line === undefined && p.limit === undefined && p.offset === undefined), {
    message: "a transcript is read whole (within maxReadBytes): no tail, line, limit or offset",
    path: ["view"],
  })
  .refine((p) => !(p.view === "model" && p.encoding === "base64"), {
    message: "the model view is text; use encoding utf8",
    path: ["encoding"],
  });

export const EntryGetResult = EntrySummary.extend({
  body: z.string(),
  encoding: z.enum(["utf8", "base64"]),
  range: z.object({
    line: z.number().int().describe("First line returned (1-based)"),
    lines: z.number().int().describe("Lines that came back whole (0 for a part of one)"),
  }),
  truncated: z.boolean().describe("True when maxReadBytes cut the body short (it then ends after a whole line, or is a part of one)"),
  part: z
    .object({
      offset: z.number().int().describe("First byte of the line `range.line` returned"),
      bytes: z.number().int(),
      end: z.boolean().describe("True when the part reaches the line's end"),
    })
    .optional()
    .describe("Present when the body is part of one line: a line longer than maxReadBytes, or a read with offset"),
});

export const entryGet = request({
  name: "entry/get",
  role: "viewer",
  description: "Reads an entry: its whole body, the last N lines (`tail`), or a line slice (`line`, `limit`), raw or as the model sees it.",
  params: EntryGetParams,
  result: EntryGetResult,
});

export const entryList = request({
  name: "entry/list",
  role: "viewer",
  description: "Entries of a run, oldest first, optionally filtered by a path glob (`*`, `?`) and a status.",
  params: z.strictObject({
    run: RunAlias,
    pattern: z.string().min(1).max(1024).optional().describe("Glob over paths, e.g. sh://turn_2/*"),
    status: Status.optional(),
    limit: z.number().int().min(1).max(10_000).optional().describe("At most this many (default 1000)"),
  }),
  result: z.object({ entries: z.array(EntrySummary) }),
});

// The search's bounds live with the matching (search-lines.ts: zod-free, what `spool tail --grep` loads).
export { SEARCH_DEFAULT_MATCHES, SEARCH_MAX_BYTES, SEARCH_MAX_CONTEXT, SEARCH_MAX_MATCHES, SEARCH_MAX_PATTERN } from "../search-lines.js";

export const EntrySearchParams = z.strictObject({
  run: RunAlias,
  path: EntryPath.describe("One channel (sh://turn_1/make_1) or a command's log path (log://…): its output channels merged in the order they were stored"),
  pattern: z.string().min(1).max(SEARCH_MAX_PATTERN).describe("Text to find in a line (plain text, unless `regex`)"),
  regex: z
    .boolean()
    .optional()
    .describe(
      "The pattern is a regular expression in RE2's syntax (JavaScript's less backreferences and lookaround), tried on each line in time linear in its length",
    ),
  ignoreCase: z.boolean().optional().describe("Letters match in either case"),
  before: z.number().int().min(0).max(SEARCH_MAX_CONTEXT).optional().describe("Lines of context before each match (default 0)"),
  after: z.number().int().min(0).max(SEARCH_MAX_CONTEXT).optional().describe("Lines of context after each match (default 0)"),
  limit: z.number().int().min(1).max(SEARCH_MAX_MATCHES).optional().describe(`Matches at most (default ${SEARCH_DEFAULT_MATCHES})`),
  fromLine: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe("First line searched (1-based; default 1): the previous answer's `nextLine` goes on from where it stopped"),
});

export const SearchMatch = z.object({
  line: z.number().int().describe("1-based line number in the searched view"),
  text: z.string().describe("The line (without its newline; cut after 2000 characters)"),
  path: z.string().describe("The channel the line is in"),
  before: z.array(z.string()).describe("The lines before it (context), oldest first"),
  after: z.array(z.string()).describe("The lines after it (context)"),
});

export const EntrySearchResult = z.object({
  path: z.string(),
  status: Status.describe(
    "The searched output's status: a channel's, or for a log path the command's (102 while it still streams — what is stored so far was searched — then 200, 499 or 500)",
  ),
  lines: z.number().int().describe("Lines the search passed (all the view's lines when it reached the end)"),
  matches: z.array(SearchMatch).describe("In line order"),
  truncated: z.boolean().describe("True when the search stopped before the end of what is stored (the limit, the byte cap or the time budget)"),
  nextLine: z.number().int().optional().describe("With truncated: the line to go on from (`fromLine` of the next call)"),
  timedOut: z.boolean().optional().describe("True when the time budget (limits.searchBudgetMs) ended it"),
});

export const entrySearch = request({
  name: "entry/search",
  role: "viewer",
  description:
    "Finds the lines of a command's stored output (one channel, or its output channels merged) holding a pattern: plain text, or a regular expression (RE2: linear time, within a time budget kept as a guard); with line numbers and context lines, in line order, at most `limit` matches and 256 KiB, and the line to go on from. Runs in a worker thread (never delays appends); a live channel is searched as stored so far.",
  params: EntrySearchParams,
  result: EntrySearchResult,
});
