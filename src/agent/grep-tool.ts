import type { Core } from "../core/index.js";
import { ENTRY } from "../core/status.js";
import type { EntryRow } from "../core/views.js";
import { cleanTerminalText } from "../model/terminal-text.js";
import { SEARCH_DEFAULT_MATCHES, SEARCH_MAX_BYTES } from "../protocol/methods/entry.js";
import { grepLines } from "../protocol/search-lines.js";
import { SpoolError } from "../rpc/errors.js";
import { statusText } from "./interactive.js";
import type { ToolContext } from "./tool-context.js";

export interface GrepArgs {
  path: string;
  pattern: string;
  regex?: boolean | undefined;
  ignore_case?: boolean | undefined;
  context?: number | undefined;
  limit?: number | undefined;
  from_line?: number | undefined;
}

/** Lines of context the model gets around a match unless it asks. */
const DEFAULT_CONTEXT = 2;

/**
 * `grep`: entry/search for the model. Matches as grep -n prints them (`N:` a match, `N-` context, `--` between groups),
 * each line as a terminal shows it (colours and cursor moves gone), within the model's budget; where the search
 * stopped, the from_line to go on with.
 */
export async function grepTool(ctx: Pick<ToolContext, "core" | "run" | "budgetTokens" | "signal">, args: GrepArgs): Promise<string> {
  if (args.regex) {
    try {
      new RegExp(args.pattern);
    } catch (error) {
      return `error: the pattern is not a valid regular expression: ${(error as Error).message}`;
    }
  }
  let target: { row: EntryRow; channels: EntryRow[] };
  try {
    target = await ctx.core.entries.searchTarget(ctx.run.id, args.path);
  } catch (error) {
    if (error instanceof SpoolError) return `error: ${error.errorName === "NOT_FOUND" ? `no entry "${args.path}" in this run` : error.message}`;
    throw error;
  }
  const context = args.context ?? DEFAULT_CONTEXT;
  const fromLine = args.from_line ?? 1;
  let found: Awaited<ReturnType<Core["entries"]["search"]>>;
  try {
    found = await ctx.core.entries.search(
      target.channels.map((c) => c.id),
      {
        pattern: args.pattern,
        regex: args.regex ?? false,
        ignoreCase: args.ignore_case ?? false,
        before: context,
        after: context,
        limit: args.limit ?? SEARCH_DEFAULT_MATCHES,
        fromLine,
        maxBytes: Math.min(SEARCH_MAX_BYTES, ctx.budgetTokens * 4),
      },
      ctx.signal,
    );
  } catch (error) {
    if (error instanceof SpoolError) return `error: ${error.message}`;
    throw error;
  }
  const live = target.channels.some((c) => c.status === ENTRY.streaming);
  const names = new Map(target.channels.map((c) => [c.id, c.path]));
  const several = target.channels.length > 1;
  const where = fromLine > 1 ? ` from line ${fromLine}` : "";
  const head = `${target.row.path}: ${found.matches.length === 0 ? "no" : found.matches.length} line${found.matches.length === 1 ? "" : "s"} matching ${JSON.stringify(args.pattern)}${where} (${found.lines} lines searched; ${live ? "still running: what it printed so far" : statusText(target.row.status)})`;
  const cleaned = found.matches.map((m) => ({ ...m, text: clean(m.text), before: m.before.map(clean), after: m.after.map(clean) }));
  const out = [head, ...grepLines(cleaned, { suffix: (m) => (several ? `  (${names.get((m as (typeof cleaned)[number]).entryId) ?? ""})` : "") }).lines];
  if (found.nextLine !== undefined) {
    const why = found.timedOut ? "the search ran out of time" : "more may follow";
    out.push(`[… ${why}: grep again with "from_line": ${found.nextLine} …]`);
  }
  return out.join("\n");
}

/** A stored line as the model reads it: what a terminal shows of it, on one line. */
const clean = (text: string) => cleanTerminalText(text).replace(/\n/g, " ");
