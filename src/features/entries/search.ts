import { ENTRY } from "../../core/status.js";
import { defineMethod } from "../../plugins/define-method.js";
import { SEARCH_DEFAULT_MATCHES, SEARCH_MAX_BYTES } from "../../protocol/methods/entry.js";
import { methods } from "../../protocol/methods/index.js";
import { SpoolError } from "../../rpc/errors.js";

/** Searches one channel, or a command's output channels (its log path) merged in the order they were stored. */
export const entrySearch = defineMethod({
  ...methods["entry/search"],
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const { row, channels } = await ctx.core.entries.searchTarget(run.id, params.path);
    const invalid = params.regex ? ctx.core.entries.patternError(params.pattern, params.ignoreCase) : null;
    if (invalid !== null)
      throw new SpoolError("INVALID_PARAMS", `pattern is not a valid regular expression (RE2 syntax): ${invalid}`, { pattern: params.pattern });
    const empty = { path: row.path, status: row.status, lines: 0, matches: [], truncated: false };
    if (channels.length === 0) return empty;
    const query = {
      pattern: params.pattern,
      regex: params.regex ?? false,
      ignoreCase: params.ignoreCase ?? false,
      before: params.before ?? 0,
      after: params.after ?? 0,
      limit: params.limit ?? SEARCH_DEFAULT_MATCHES,
      fromLine: params.fromLine ?? 1,
      maxBytes: SEARCH_MAX_BYTES,
    };
    const found = await ctx.core.entries.search(
      channels.map((c) => c.id),
      query,
      ctx.signal,
      ctx.connection.principal,
    );
    const pathOf = new Map(channels.map((c) => [c.id, c.path]));
    return {
      path: row.path,
      // A log entry's own status is its proposal's (200 once accepted): the command's is its channels' (102 while
      // one still streams, then how it ended).
      status: row.scheme !== "log" ? row.status : channels.some((c) => c.status === ENTRY.streaming) ? ENTRY.streaming : (channels[0]?.status ?? row.status),
      lines: found.lines,
      matches: found.matches.map(({ entryId, ...match }) => ({ ...match, path: pathOf.get(entryId) ?? row.path })),
      truncated: found.nextLine !== undefined,
      ...(found.nextLine !== undefined ? { nextLine: found.nextLine } : {}),
      ...(found.timedOut ? { timedOut: true } : {}),
    };
  },
});
