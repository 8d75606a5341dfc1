import type { SpoolClient } from "../../client/spool-client.js";
import type { ResultOf } from "../../protocol/methods/index.js";
import { grepLines, SEARCH_MAX_CONTEXT, SEARCH_MAX_MATCHES } from "../../protocol/search-lines.js";
import { CliError, EXIT, usageError } from "../errors.js";
import { commandOutput } from "../terminal-writer.js";

export interface GrepOptions {
  pattern: string;
  context: number;
  /** Whether -C was given (grep's `--` between groups comes with a context only, even -C 0). */
  contextAsked: boolean;
  ignoreCase: boolean;
  regex: boolean;
}

/** `spool tail --grep`'s options, checked (null without --grep). */
export function grepOptions(values: {
  grep?: string | undefined;
  context?: string | undefined;
  "ignore-case"?: boolean | undefined;
  regex?: boolean | undefined;
  follow?: boolean | undefined;
  lines?: string | undefined;
  input?: boolean | undefined;
}): GrepOptions | null {
  if (values.grep === undefined) {
    if (values.context !== undefined || values["ignore-case"] || values.regex) throw usageError("-C, -i and -E go with --grep PATTERN");
    return null;
  }
  if (values.follow || values.lines !== undefined || values.input) throw usageError("--grep searches what is stored: without -f, -n or --input");
  if (values.grep === "") throw usageError("--grep needs a pattern");
  const context = values.context === undefined ? 0 : Number(values.context);
  if (!Number.isInteger(context) || context < 0 || context > SEARCH_MAX_CONTEXT)
    throw usageError(`-C must be a whole number from 0 to ${SEARCH_MAX_CONTEXT}, got "${values.context}"`);
  return {
    pattern: values.grep,
    context,
    contextAsked: values.context !== undefined,
    ignoreCase: Boolean(values["ignore-case"]),
    regex: Boolean(values.regex),
  };
}

/**
 * Prints the matching lines of a command's stored output as grep -n does, paging through the server's answers
 * (entry/search, 200 matches a call); each page is written before the next is asked for. Exit 0 when a line
 * matched, 1 when none did.
 */
export async function grepOutput(client: SpoolClient, run: string, path: string, options: GrepOptions): Promise<number> {
  const output = commandOutput();
  let fromLine = 1;
  let matched = 0;
  /** The last line printed (a `--` goes between groups that do not touch). */
  let last = 0;
  for (;;) {
    let answer: ResultOf<"entry/search">;
    try {
      answer = await client.call("entry/search", {
        run,
        path,
        pattern: options.pattern,
        before: options.context,
        after: options.context,
        limit: SEARCH_MAX_MATCHES,
        fromLine,
        ...(options.ignoreCase ? { ignoreCase: true } : {}),
        ...(options.regex ? { regex: true } : {}),
      });
    } catch (error) {
      output.end();
      throw error instanceof Error && /regular expression/.test(error.message) ? new CliError(error.message, EXIT.usage) : error;
    }
    const printed = grepLines(answer.matches, { context: options.contextAsked, after: last });
    const lines = printed.lines;
    last = printed.last;
    matched += answer.matches.length;
    if (lines.length > 0 && !output.write(1, Buffer.from(`${lines.join("\n")}\n`))) await new Promise((resolve) => process.stdout.once("drain", resolve));
    if (!answer.truncated || answer.nextLine === undefined) break;
    if (answer.timedOut) process.stderr.write(`${path}: the search of lines ${fromLine}-${answer.nextLine - 1} ran into the server's time budget; going on\n`);
    fromLine = answer.nextLine;
  }
  output.end();
  return matched > 0 ? EXIT.ok : EXIT.failed;
}
