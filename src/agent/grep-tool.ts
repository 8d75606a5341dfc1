import type { Core } from "../core/index.js";
import { ENTRY } from "../core/status.js";
import type { EntryRow } from "../core/views.js";
import { cleanTerminalText } from "../model/terminal-text.js";
import { SEARCH_DEFAULT_MATCHES, SEARCH_MAX_BYTES } from "../protocol/methods/entry.js";
import { grepLines } from "../protocol/search-lines.js";
import { SpoolError } from "../rpc/errors.js";
import { CONVERSATION_PATH } from "./compaction.js";
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
  const invalid = args.regex ? ctx.core.entries.patternError(args.pattern) : null;
  if (invalid !== null) return `error: the pattern is not a valid regular expression (RE2 syntax: no backreferences or lookaround): ${invalid}`;
  if (args.path === CONVERSATION_PATH) return grepConversation(ctx, args);
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
  const out = [
    head,
    ...grepLines(cleaned, { context: context > 0, suffix: (m) => (several ? `  (${names.get((m as (typeof cleaned)[number]).entryId) ?? ""})` : "") }).lines,
  ];
  if (found.nextLine !== undefined) {
    const why = found.timedOut ? "the search ran out of time" : "more may follow";
    out.push(`[… ${why}: grep again with "from_line": ${found.nextLine} …]`);
  }
  return out.join("\n");
}

/** A stored line as the model reads it: what a terminal shows of it, on one line. */
const clean = (text: string) => cleanTerminalText(text).replace(/\n/g, " ");

/** The lines of one stored message as the conversation grep reads them: `#id role: text`, tool calls on lines of their own. */
function messageLines(id: number, role: string, body: string): string[] {
  const m = JSON.parse(body) as {
    content?: string | null;
    tool_calls?: { id: string; function: { name: string; arguments: string } }[];
    tool_call_id?: string;
  };
  const head = role === "tool" ? `#${id} result of ${m.tool_call_id ?? "?"}` : `#${id} ${role}`;
  const text = typeof m.content === "string" ? m.content : "";
  const calls = (m.tool_calls ?? []).map((c) => `#${id} call ${c.id} ${c.function.name} ${c.function.arguments}`);
  return [...text.split("\n").map((l, i) => (i === 0 ? `${head}: ${l}` : `#${id}   ${l}`)), ...calls];
}

/**
 * `grep` on conversation://: the run's whole stored conversation, the parts a compaction took out of the model's
 * requests included, searched a page of messages at a time; each match with the message id it is in.
 */
async function grepConversation(ctx: Pick<ToolContext, "core" | "run" | "budgetTokens" | "signal">, args: GrepArgs): Promise<string> {
  // On the server's thread: the pattern must cost time linear in each line, as entry/search's does (the model chose it).
  const test = ctx.core.entries.lineTest({ pattern: args.pattern, regex: args.regex ?? false, ignoreCase: args.ignore_case ?? false });
  const limit = args.limit ?? SEARCH_DEFAULT_MATCHES;
  const from = args.from_line ?? 1;
  const maxBytes = Math.min(SEARCH_MAX_BYTES, ctx.budgetTokens * 4);
  const out: string[] = [];
  let bytes = 0;
  let lineNo = 0;
  let matches = 0;
  let next: number | undefined;
  for (let after = 0; next === undefined; ) {
    if (ctx.signal.aborted) break;
    const page = await ctx.core.runs.history(ctx.run.id, { afterId: after, limit: 200 });
    for (const row of page) {
      if (row.role === "system") continue;
      for (const l of messageLines(row.id, row.role, row.body)) {
        lineNo++;
        if (lineNo < from || !test(l)) continue;
        const shown = `${lineNo}:${clean(l).slice(0, 400)}`;
        if (matches >= limit || bytes + shown.length > maxBytes) {
          next = lineNo;
          break;
        }
        out.push(shown);
        bytes += shown.length + 1;
        matches++;
      }
      if (next !== undefined) break;
    }
    if (page.length < 200) break;
    after = page.at(-1)!.id;
  }
  const head = `${CONVERSATION_PATH}: ${matches === 0 ? "no" : matches} line${matches === 1 ? "" : "s"} matching ${JSON.stringify(args.pattern)}${from > 1 ? ` from line ${from}` : ""} (the whole conversation of this run, as stored)`;
  if (next !== undefined) out.push(`[… more may follow: grep again with "from_line": ${next} …]`);
  return [head, ...out].join("\n");
}
