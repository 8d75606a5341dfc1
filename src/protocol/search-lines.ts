/** Matches an `entry/search` returns at most, and by default. */
export const SEARCH_MAX_MATCHES = 200;
export const SEARCH_DEFAULT_MATCHES = 20;
/** Lines of context a search may ask for on either side of a match. */
export const SEARCH_MAX_CONTEXT = 20;
/** Bytes of matched and context lines one answer holds at most (past it the answer ends at a whole match, truncated). */
export const SEARCH_MAX_BYTES = 256 * 1024;
/** A pattern's characters at most. */
export const SEARCH_MAX_PATTERN = 1000;

/** A match of entry/search as the readers print it. */
export interface PrintedMatch {
  line: number;
  text: string;
  before: readonly string[];
  after: readonly string[];
}

/**
 * Matches as `grep -n` prints them: `N:line` for a match, `N-line` for context, and — as grep does only when
 * context was asked for (`context`, even -C 0) — `--` between groups that do not touch; a line shown once, as a
 * match when it is one. `after` is the last line printed before these (a page that goes on from an earlier one),
 * and `suffix` what follows a match's line (its channel, say).
 */
export function grepLines(
  matches: readonly PrintedMatch[],
  options: { context: boolean; after?: number; suffix?: (match: PrintedMatch) => string },
): { lines: string[]; last: number } {
  const shown = new Map<number, string>();
  const isMatch = new Set(matches.map((m) => m.line));
  for (const match of matches) {
    match.before.forEach((text, i) => {
      const n = match.line - match.before.length + i;
      if (!isMatch.has(n)) shown.set(n, `${n}-${text}`);
    });
    shown.set(match.line, `${match.line}:${match.text}${options.suffix?.(match) ?? ""}`);
    match.after.forEach((text, i) => {
      const n = match.line + 1 + i;
      if (!isMatch.has(n)) shown.set(n, `${n}-${text}`);
    });
  }
  const lines: string[] = [];
  let last = options.after ?? 0;
  for (const n of [...shown.keys()].sort((x, y) => x - y)) {
    if (n <= last) continue;
    if (options.context && last > 0 && n > last + 1) lines.push("--");
    lines.push(shown.get(n)!);
    last = n;
  }
  return { lines, last };
}
