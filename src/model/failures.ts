/**
 * Lines that look like failures, for the part of a large output the model
 * view leaves out. Patterns are JavaScript regular expressions, matched
 * case-insensitively (and multi-line: `^` is a line start) against the line
 * with its escape sequences removed.
 */
export const DEFAULT_FAILURE_PATTERNS: readonly string[] = [
  // error, errors, ERROR: — but not -Werror, src/error.rs, "0 errors"
  String.raw`(?<![-/.]|\b0 )\berrors?\b(?![./-]\w)`,
  // npm ERR!, TypeError, NullPointerException, "Exception in thread"
  String.raw`\bERR!`,
  String.raw`[a-z]{2,}(?:error|exception)\b`,
  String.raw`\bexceptions?\b`,
  // FAIL, FAILED, failure, "2 failed" (not "0 failed")
  String.raw`(?<!\b0 )\bfail(?:s|ed|ure|ures|ing)?\b`,
  String.raw`\bpanic(?:ked|s)?\b`,
  String.raw`^\s*traceback\b`,
  String.raw`\bfatal\b`,
  String.raw`\b(?:segmentation fault|core dumped|out of memory)\b`,
  // "exited with code 1", "exit status 2", "Exit code: 137", "non-zero exit status"
  String.raw`\bexit(?:ed)?(?: with)?(?: code| status)?\W{0,3}[1-9]\d*\b`,
  String.raw`\bnon-zero exit\b`,
  // test runners' failure marks
  String.raw`^\s*[✕✗✘]\s`,
];

/** Why a configured pattern list is unusable, or undefined when every pattern compiles. */
export function checkFailurePatterns(patterns: readonly string[]): string | undefined {
  for (const pattern of patterns) {
    try {
      new RegExp(pattern, "im");
    } catch (error) {
      return `invalid failure pattern ${JSON.stringify(pattern)}: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  return undefined;
}

const compiled = new Map<string, RegExp | undefined>();

/** One global regular expression for a pattern list (cached), or undefined for an empty list (no search). */
export function failureRegex(patterns: readonly string[] = DEFAULT_FAILURE_PATTERNS): RegExp | undefined {
  const key = JSON.stringify(patterns);
  if (compiled.has(key)) return compiled.get(key);
  const regex = patterns.length === 0 ? undefined : new RegExp(patterns.map((p) => `(?:${p})`).join("|"), "gim");
  if (compiled.size > 64) compiled.clear();
  compiled.set(key, regex);
  return regex;
}

/** Whether one (already rendered) line looks like a failure. */
export function looksLikeFailure(line: string, regex: RegExp): boolean {
  regex.lastIndex = 0;
  return regex.test(line);
}

// Escape sequences, never across a newline (so line numbers survive): CSI, OSC and DCS/SOS/PM/APC strings, other escapes, 8-bit CSI.
const ESCAPES =
  /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b\n]*(?:\u0007|\u001b\\)?|\u001b[PX^_][^\u001b\n]*(?:\u001b\\)?|\u001b[ -/]*[0-~]|\u009b[0-?]*[ -/]*[@-~]/g;

/**
 * Calls `hit` with the 0-based index and the raw text of every line of
 * `text` that looks like a failure (escape sequences are removed before
 * matching; the raw line is passed on, to be rendered). One pass of two
 * regular expressions over the text: no splitting into lines.
 */
export function scanFailureLines(text: string, regex: RegExp, hit: (line: number, raw: string) => void): void {
  const stripped = text.includes("\u001b") || text.includes("\u009b") ? text.replace(ESCAPES, "") : text;
  let line = 0; // line of `counted` in stripped
  let counted = 0;
  let rawLine = 0; // line of `rawPos` in text
  let rawPos = 0;
  regex.lastIndex = 0;
  for (let m = regex.exec(stripped); m !== null; m = regex.exec(stripped)) {
    for (let nl = stripped.indexOf("\n", counted); nl !== -1 && nl < m.index; nl = stripped.indexOf("\n", nl + 1)) {
      line++;
      counted = nl + 1;
    }
    counted = Math.max(counted, m.index);
    while (rawLine < line) {
      const nl = text.indexOf("\n", rawPos);
      if (nl === -1) break;
      rawPos = nl + 1;
      rawLine++;
    }
    const rawEnd = text.indexOf("\n", rawPos);
    hit(line, text.slice(rawPos, rawEnd === -1 ? text.length : rawEnd));
    const end = stripped.indexOf("\n", m.index);
    if (end === -1) break;
    regex.lastIndex = end + 1; // one hit per line
  }
  regex.lastIndex = 0;
}
