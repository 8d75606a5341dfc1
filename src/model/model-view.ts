import { type LineCounts, lineCount } from "../protocol/entry-lines.js";
import { failureRegex, looksLikeFailure, scanFailureLines } from "./failures.js";
import { SEARCH_TOOL } from "./search-tool.js";
import { endsLine, type Rendering, type RenderOptions, renderEachLine, renderTerminal } from "./terminal.js";

/** What the model's view reads of an entry: its id, path, channel and line counts (the store's row has them). */
export interface ViewedEntry extends LineCounts {
  id: number;
  path: string;
  /** The stream it is (0 stdin, 1 stdout, 2 stderr), null for a body that is not a channel. */
  channel: number | null;
}

/** What a line read gives the view (the store's reads give more). */
export interface LineRead {
  data: Buffer;
  /** Lines in `data` (the last may lack its newline). */
  lines: number;
  /** True when `maxBytes` stopped the read before `count` lines. */
  truncated: boolean;
}

/** Reads `count` lines from 0-based `line` of a streamed entry, at most `maxBytes`. */
export type LineReader = (entryId: number, line: number, count: number, maxBytes: number) => Promise<LineRead>;

/** Rough tokens → characters for budgeting (about 4 characters a token for English text and code). */
export const CHARS_PER_TOKEN = 4;
/** Raw bytes rendered at each end of a large channel: 16 raw bytes for each character of budget (noisy output shrinks a lot), at least 64 KiB. */
const WINDOW_BYTES_PER_CHAR = 16;
const MIN_WINDOW_BYTES = 64 * 1024;
/** Failure-looking lines kept from the omitted middle: the first and the last of them when there are more. */
export const MAX_FAILURE_LINES = 20;
/** A kept failure line is cut to this many characters. */
const FAILURE_LINE_CHARS = 300;
/** Raw bytes of one failure line passed to the terminal (the rest of a giant line is not rendered). */
const FAILURE_RAW_CHARS = 16 * 1024;
/** Most raw bytes of the omitted middle searched for failures; beyond it, the part next to the head and the part next to the tail. */
export const DEFAULT_SCAN_BYTES = 16 * 1024 * 1024;
/** The middle is read in pages of this many lines or bytes. */
const SCAN_PAGE_LINES = 8192;
const SCAN_PAGE_BYTES = 1024 * 1024;

export interface ViewOptions {
  /** Patterns of failure-looking lines (see failures.ts); default DEFAULT_FAILURE_PATTERNS, `[]` turns the search off. */
  failurePatterns?: readonly string[];
  /** Most raw bytes of the omitted middle searched for failures (default DEFAULT_SCAN_BYTES). */
  scanBytes?: number;
}

export interface FailureLine {
  /** 1-based line of the raw channel, for `get`. */
  line: number;
  text: string;
}

export interface ModelView {
  text: string;
  /** Lines and bytes of the raw channel left out of `text`. */
  omittedLines: number;
  omittedBytes: number;
  /** Failure-looking lines of the omitted part that `text` keeps. */
  failures: FailureLine[];
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** A rendered window of raw lines [firstLine, firstLine + lineCount). */
interface Window {
  firstLine: number;
  lineCount: number;
  /** Byte offset of each raw line's start in the window, and the window's length last. */
  offsets: number[];
  rendering: Rendering;
}

/** How a channel is rendered: its stdin (channel 0) is what was typed, shown as the lines typed. */
export function renderOptionsFor(entry: Pick<ViewedEntry, "channel">): RenderOptions {
  return { input: entry.channel === 0 };
}

async function renderWindow(data: Buffer, firstLine: number, options: RenderOptions): Promise<Window> {
  const offsets = [0];
  for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, i + 1)) offsets.push(i + 1);
  if (offsets[offsets.length - 1] !== data.length) offsets.push(data.length);
  const rendering = await renderTerminal(data.toString("utf8"), options);
  return { firstLine, lineCount: offsets.length - 1, offsets, rendering };
}

/** Drops the partial last line of a read that `maxBytes` cut short (unless it is the only line). */
function completeLines(read: LineRead): Buffer {
  if (!read.truncated || read.lines <= 1) return read.data;
  return read.data.subarray(0, read.data.lastIndexOf(10) + 1);
}

/** The longest run of lines from `from` on within `budget` characters (a first line over it is cut). */
function fitHead(lines: string[], from: number, to: number, budget: number): string[] {
  const out: string[] = [];
  let used = 0;
  for (let i = from; i < to; i++) {
    const line = lines[i]!;
    if (used + line.length + 1 > budget) {
      if (out.length === 0 && budget > 2) out.push(`${line.slice(0, budget - 2)}…`);
      break;
    }
    out.push(line);
    used += line.length + 1;
  }
  return out;
}

/** The longest run of lines ending at `to` within `budget` characters (a last line over it keeps its end). */
function fitTail(lines: string[], from: number, to: number, budget: number): string[] {
  const out: string[] = [];
  let used = 0;
  for (let i = to - 1; i >= from; i--) {
    const line = lines[i]!;
    if (used + line.length + 1 > budget) {
      if (out.length === 0 && budget > 2) out.push(`…${line.slice(line.length - (budget - 2))}`);
      break;
    }
    out.push(line);
    used += line.length + 1;
  }
  return out.reverse();
}

/** Keeps the first half and the last half of at most `max` hits, counting them all. */
class HitKeeper<T> {
  first: T[] = [];
  last: T[] = [];
  found = 0;
  constructor(private readonly max: number) {}
  add(hit: T): void {
    this.found++;
    if (this.first.length < Math.ceil(this.max / 2)) this.first.push(hit);
    else {
      this.last.push(hit);
      if (this.last.length > Math.floor(this.max / 2)) this.last.shift();
    }
  }
  kept(): T[] {
    return [...this.first, ...this.last];
  }
}

interface Candidate {
  line: number; // 1-based raw line
  /** Rendered already (head or tail window), with its place there… */
  text?: string;
  window?: "head" | "tail";
  index?: number;
  /** …or raw, from the unrendered middle. */
  raw?: string;
}

/**
 * Searches raw lines [from, to) of the entry for failure-looking lines,
 * page by page, reading at most `maxBytes`. Returns the line it stopped at.
 */
async function scanRaw(
  readLines: LineReader,
  entryId: number,
  from: number,
  to: number,
  maxBytes: number,
  regex: RegExp,
  keep: HitKeeper<Candidate>,
): Promise<{ reached: number; bytes: number }> {
  let line = from;
  let bytes = 0;
  while (line < to && bytes < maxBytes) {
    const room = Math.min(SCAN_PAGE_BYTES, maxBytes - bytes);
    const read = await readLines(entryId, line, Math.min(SCAN_PAGE_LINES, to - line), room);
    if (read.lines === 0) break;
    let data = read.data;
    let lines = read.lines;
    if (read.truncated) {
      const end = data.lastIndexOf(10) + 1;
      if (end > 0) {
        data = data.subarray(0, end); // the partial last line is read again by the next page
        lines--;
      } else if (room < SCAN_PAGE_BYTES) break; // the next line does not fit in what is left of the budget
      // else a line longer than a page: its first page is searched, the rest skipped
    }
    const base = line;
    scanFailureLines(data.toString("utf8"), regex, (i, raw) => keep.add({ line: base + i + 1, raw: raw.slice(0, FAILURE_RAW_CHARS) }));
    bytes += data.length;
    line += lines;
  }
  return { reached: line, bytes };
}

/**
 * What the model sees of a streamed channel: what a terminal finally shows
 * (rendered by a terminal emulator: cursor moves, erases, carriage returns,
 * backspaces), and when that does not fit `budgetTokens`, a head and a tail
 * with a note that says what was left out and how to read it with `get`,
 * plus the failure-looking lines of the left-out part with their line
 * numbers.
 *
 * Cost is bounded whatever the channel's size: a channel up to two windows
 * (16 raw bytes per character of budget, 256 KiB each at the default
 * budget) is rendered whole; a larger one renders only a head window and a
 * tail window (found through the line index), and reads the middle between
 * them only to search it for failures, in pages, at most `scanBytes` of it
 * (the part next to the head and the part next to the tail when it is
 * larger; the note names the lines not searched). Only the kept failure
 * lines of the middle are rendered.
 */
export async function channelModelView(readLines: LineReader, entry: ViewedEntry, budgetTokens: number, options: ViewOptions = {}): Promise<ModelView> {
  const budget = Math.max(200, budgetTokens * CHARS_PER_TOKEN);
  const total = lineCount(entry);
  if (total === 0 || entry.bytes === 0) return { text: "", omittedLines: 0, omittedBytes: 0, failures: [] };
  const windowBytes = Math.max(MIN_WINDOW_BYTES, budget * WINDOW_BYTES_PER_CHAR);
  const render = renderOptionsFor(entry);
  if (entry.bytes <= 2 * windowBytes) {
    const read = await readLines(entry.id, 0, total, entry.bytes + 1);
    const whole = await renderWindow(read.data, 0, render);
    const { lines } = whole.rendering;
    const size = lines.reduce((n, line) => n + line.length + 1, 0);
    if (size <= budget) {
      const last = read.data.subarray(read.data.length - 1).toString("latin1");
      const text = lines.length === 0 ? "" : `${lines.join("\n")}${endsLine(last, render) ? "\n" : ""}`;
      return { text, omittedLines: 0, omittedBytes: 0, failures: [] };
    }
    return cut(readLines, entry, total, budget, whole, whole, options);
  }
  const headRead = await readLines(entry.id, 0, total, windowBytes);
  const head = await renderWindow(completeLines(headRead), 0, render);
  // The tail window: about `windowBytes` of the last lines (estimated from the average line), fewer lines while that overflows.
  let count = Math.min(total - head.lineCount, Math.max(1, Math.ceil(windowBytes / Math.max(1, entry.bytes / total))));
  let tailRead: LineRead;
  for (;;) {
    tailRead = await readLines(entry.id, total - count, count, 2 * windowBytes);
    if (!tailRead.truncated || count <= 1) break;
    count = Math.max(1, Math.floor(count / 4));
  }
  const tail = await renderWindow(tailRead.data, total - count, render);
  return cut(readLines, entry, total, budget, head, tail, options);
}

/** Head and tail within the budget, the failure lines between them, and the note. `head === tail` when one window holds the whole channel. */
async function cut(
  readLines: LineReader,
  entry: ViewedEntry,
  total: number,
  budget: number,
  head: Window,
  tail: Window,
  options: ViewOptions,
): Promise<ModelView> {
  const same = head === tail;
  const H = head.rendering.lines;
  const T = tail.rendering.lines;
  const regex = failureRegex(options.failurePatterns);
  // Failure lines may take up to a quarter of the budget; head and tail share the rest, or all of it when there are none.
  const reserve = regex ? Math.floor(budget / 4) : 0;
  const minHalf = Math.floor((budget - reserve) / 2);
  const maxHalf = Math.floor(budget / 2);
  const hMin = fitHead(H, 0, H.length, minHalf).length;
  const tMin = fitTail(T, same ? hMin : 0, T.length, minHalf).length;

  // Candidates: everything between the shortest head and the shortest tail.
  const keep = new HitKeeper<Candidate>(MAX_FAILURE_LINES);
  const unscanned: [number, number][] = [];
  if (regex) await gatherFailures(readLines, entry, head, tail, { hMin, tMin }, regex, options, keep, unscanned);
  let { failures, dropped } = await failuresWithin(keep, entry, reserve);

  // The final cut: head and tail get what the failure lines leave; lines now shown in either are no longer "failures of the omitted part".
  const half = failures.length === 0 ? maxHalf : Math.floor((budget - failuresCost(failures)) / 2);
  const headLines = fitHead(H, 0, H.length, half);
  const tailLines = fitTail(T, same ? headLines.length : 0, T.length, half);
  const h = headLines.length;
  const tailFrom = T.length - tailLines.length;
  failures = failures.filter(
    (f) => !((f.window === "head" && f.index! < h) || (f.window === "tail" && f.index! >= tailFrom) || (same && f.index! >= tailFrom)),
  );
  const omitted = omittedRange(entry, head, tail, h, tailFrom);
  const notes = omissionNotes(entry, total, omitted, failures, dropped, unscanned, options);
  if (notes.length > 1 && tailLines.length > 0) notes.push(`[… the output goes on at line ${omitted.firstTail + 1} …]`);
  const text = [...headLines, ...notes, ...tailLines].join("\n");
  const { omittedLines, omittedBytes } = omitted;
  return { text: `${text}\n`, omittedLines, omittedBytes, failures: failures.map((f) => ({ line: f.line, text: f.text! })) };
}

/**
 * Keeps the failure-like lines between the shortest head (`hMin` lines) and the shortest tail (`tMin`): rendered ones
 * of the windows, raw ones of the middle, searched up to `scanBytes`; the line ranges not searched go to `unscanned`.
 */
async function gatherFailures(
  readLines: LineReader,
  entry: ViewedEntry,
  head: Window,
  tail: Window,
  { hMin, tMin }: { hMin: number; tMin: number },
  regex: RegExp,
  options: ViewOptions,
  keep: HitKeeper<Candidate>,
  unscanned: [number, number][],
): Promise<void> {
  const rendered = (window: Window, name: "head" | "tail", from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const text = window.rendering.lines[i]!;
      if (looksLikeFailure(text, regex)) keep.add({ line: window.firstLine + window.rendering.sourceLines[i]! + 1, text, window: name, index: i });
    }
  };
  const H = head.rendering.lines;
  const T = tail.rendering.lines;
  if (head === tail) {
    rendered(head, "head", hMin, H.length - tMin);
    return;
  }
  rendered(head, "head", hMin, H.length);
  const from = head.firstLine + head.lineCount;
  const to = tail.firstLine;
  const scanBytes = options.scanBytes ?? DEFAULT_SCAN_BYTES;
  const middleBytes = entry.bytes - head.offsets[head.offsets.length - 1]! - tail.offsets[tail.offsets.length - 1]!;
  if (middleBytes <= scanBytes) await scanRaw(readLines, entry.id, from, to, Number.MAX_SAFE_INTEGER, regex, keep);
  else {
    const near = await scanRaw(readLines, entry.id, from, to, scanBytes / 2, regex, keep);
    const perLine = near.bytes / Math.max(1, near.reached - from);
    const start = Math.max(near.reached, to - Math.ceil(scanBytes / 2 / Math.max(1, perLine)));
    if (start > near.reached) unscanned.push([near.reached, start]);
    const far = await scanRaw(readLines, entry.id, start, to, scanBytes, regex, keep);
    if (far.reached < to) unscanned.push([far.reached, to]);
  }
  rendered(tail, "tail", 0, T.length - tMin);
}

/** The kept failure lines (the raw ones rendered), every other one dropped from the middle until they fit `reserve`. */
async function failuresWithin(keep: HitKeeper<Candidate>, entry: ViewedEntry, reserve: number): Promise<{ failures: Candidate[]; dropped: number }> {
  const failures = keep.kept();
  const rawOnes = failures.filter((f) => f.raw !== undefined);
  const renderedRaw = await renderEachLine(
    rawOnes.map((f) => f.raw!),
    renderOptionsFor(entry),
  );
  for (const [i, f] of rawOnes.entries()) f.text = renderedRaw[i];
  let dropped = keep.found - failures.length;
  while (failures.length > 0 && failuresCost(failures) > reserve) {
    failures.splice(Math.floor(failures.length / 2), 1);
    dropped++;
  }
  return { failures, dropped };
}

/** A failure line as the view shows it: its number, its text cut at FAILURE_LINE_CHARS. */
function shownFailure(f: Candidate): string {
  const text = f.text!;
  return `[line ${f.line}] ${text.length > FAILURE_LINE_CHARS ? `${text.slice(0, FAILURE_LINE_CHARS - 1)}…` : text}`;
}

const failuresCost = (list: Candidate[]) => list.reduce((n, f) => n + shownFailure(f).length + 1, 0);

/** The raw lines left out, [firstOmitted, firstTail), and about how many bytes they are. */
interface Omitted {
  firstOmitted: number;
  firstTail: number;
  omittedLines: number;
  omittedBytes: number;
}

/**
 * Raw lines [firstOmitted, firstTail) are left out: from the first raw line that starts below the head's `h` rows, to
 * the last run of raw lines that all start within the tail (from its row `tailFrom`).
 */
function omittedRange(entry: ViewedEntry, head: Window, tail: Window, h: number, tailFrom: number): Omitted {
  let firstOmitted = head.rendering.lineStarts.findIndex((row) => row >= h);
  if (firstOmitted === -1) firstOmitted = head.lineCount;
  let firstTail = tail.lineCount;
  while (firstTail > 0 && tail.rendering.lineStarts[firstTail - 1]! >= tailFrom) firstTail--;
  firstOmitted += head.firstLine;
  firstTail = Math.max(firstOmitted, firstTail + tail.firstLine);
  const omittedLines = firstTail - firstOmitted;
  const omittedBytes =
    head === tail
      ? head.offsets[firstTail]! - head.offsets[firstOmitted]!
      : Math.max(0, entry.bytes - head.offsets[firstOmitted - head.firstLine]! - (tail.offsets[tail.lineCount]! - tail.offsets[firstTail - tail.firstLine]!));
  return { firstOmitted, firstTail, omittedLines, omittedBytes };
}

/** The notes between head and tail: what was left out and how to read it, the failure lines kept, the lines not searched. */
function omissionNotes(
  entry: ViewedEntry,
  total: number,
  { firstOmitted, omittedLines, omittedBytes }: Omitted,
  failures: Candidate[],
  dropped: number,
  unscanned: [number, number][],
  options: ViewOptions,
): string[] {
  const notes = [
    `[… ${plural(omittedLines, "line")} (about ${plural(omittedBytes, "byte")}) of ${entry.path} left out (${plural(total, "line")} in all); ` +
      `read them with the get tool: {"path": "${entry.path}", "line": ${firstOmitted + 1}, "limit": 200} …]\n` +
      `[… or search all of its ${plural(total, "line")} with the ${SEARCH_TOOL} tool, no command and no approval needed: {"path": "${entry.path}", "pattern": "error"} …]`,
  ];
  if (failures.length > 0) {
    const what =
      failures.length === 1 ? "1 line of the left-out part looks like a failure" : `${failures.length} lines of the left-out part look like failures`;
    const more = dropped > 0 ? `; ${dropped} more between them not shown` : "";
    notes.push(`[… ${what}, kept here with ${failures.length === 1 ? "its line number" : "their line numbers"}${more}: …]`);
    for (const f of failures) notes.push(shownFailure(f));
  }
  for (const [from, to] of unscanned) {
    notes.push(`[… lines ${from + 1}-${to} were not searched for failures (the search reads at most ${options.scanBytes ?? DEFAULT_SCAN_BYTES} bytes) …]`);
  }
  return notes;
}
