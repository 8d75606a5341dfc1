import { setFlagsFromString } from "node:v8";
import { RE2JS } from "re2js";

/**
 * The line matcher of entry/search: fed a channel's chunks in stored order (or several channels' merged by row id),
 * it finds the lines holding a pattern, with their numbers and the lines around them. It runs in the search worker
 * (search-worker.ts), never on the server's thread. Pure: no I/O, so it is tested on its own too.
 *
 * A regular expression costs time linear in the text searched, whatever the pattern (`(a+)+$` included): it must be
 * one RE2 takes (no backreferences, no lookaround: re2js checks), and it runs on V8's own engine, which is fast, with
 * V8's linear-time engine taken over for any match that backtracks past a bound. That engine knows no `i` flag, so
 * a search without case runs a pattern with each letter spelled in both cases instead. The worker's time budget stays
 * as the guard it was. (re2js itself, and V8's linear engine alone, matched 3-8 MB/s here; V8's engine with the
 * fall-back matches at hundreds.)
 */
export interface SearchQuery {
  pattern: string;
  /** The pattern is a regular expression in RE2's syntax (JavaScript's, less backreferences and lookaround; else plain text). */
  regex: boolean;
  ignoreCase: boolean;
  /** Lines of context before and after each match. */
  before: number;
  after: number;
  /** Matches at most. */
  limit: number;
  /** First line searched (1-based). */
  fromLine: number;
  /** Bytes of matched and context lines the answer holds at most. */
  maxBytes: number;
}

export interface SearchMatch {
  /** 1-based line number in the searched view. */
  line: number;
  text: string;
  /** The channel (entry id) the line starts in. */
  entryId: number;
  before: string[];
  after: string[];
}

/** A line is searched in its first this many bytes (a longer one is cut there: what follows is not searched). */
export const MAX_LINE_BYTES = 1024 * 1024;
/** A matched or context line comes back cut to this many characters. */
export const MAX_TEXT_CHARS = 2000;

const NL = 10;

/** A compiled pattern: where its first match in a text starts from an offset (-1: none), and whether a line holds one. */
export interface LinePattern {
  find(text: string, from: number): number;
  test(line: string): boolean;
}

/** Backtracks one match may take on V8's engine before its linear-time engine takes the match over. */
const BACKTRACKS_BEFORE_LINEAR = 10_000;
let linearFallback = false;

/** Makes V8 hand a match that backtracks too much to its linear-time engine (process-wide; only such matches change). */
function useLinearFallback(): void {
  if (linearFallback) return;
  linearFallback = true;
  setFlagsFromString("--enable-experimental-regexp-engine-on-excessive-backtracks");
  setFlagsFromString(`--regexp-backtracks-before-fallback=${BACKTRACKS_BEFORE_LINEAR}`);
}

/** Characters of a regular expression that mean something (escaped for a plain search without case). */
const SPECIAL = /[.*+?^${}()|[\]\\/-]/g;

/** The JavaScript source a query searches with: a plain pattern escaped, and without case each letter in both cases. */
function sourceOf(query: Pick<SearchQuery, "pattern" | "regex" | "ignoreCase">): string {
  const source = query.regex ? query.pattern : query.pattern.replace(SPECIAL, "\\$&");
  return query.ignoreCase ? bothCases(source) : source;
}

/** The pattern a query searches with, or null for a plain, case-sensitive search (bytes, no decoding). */
export function compileQuery(query: Pick<SearchQuery, "pattern" | "regex" | "ignoreCase">): LinePattern | null {
  if (!query.regex && !query.ignoreCase) return null;
  useLinearFallback();
  const line = new RegExp(sourceOf(query), "m");
  const scan = new RegExp(line.source, "mg");
  return {
    find(text, from) {
      scan.lastIndex = from;
      return scan.exec(text)?.index ?? -1;
    },
    test: (text) => line.test(text),
  };
}

/**
 * Why a pattern is no regular expression entry/search takes, or null when it is one: RE2's syntax (so every match is
 * linear), and JavaScript's (which runs it).
 */
export function regexError(pattern: string, ignoreCase = false): string | null {
  try {
    RE2JS.compile(pattern);
  } catch (error) {
    return (error as Error).message.replace(/^error parsing regexp: /, "");
  }
  try {
    new RegExp(sourceOf({ pattern, regex: true, ignoreCase }), "m");
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * A pattern that matches what `source` matches without case, with no `i` flag: each letter outside a class as a
 * class of both its cases (`a` → `[aA]`), each letter or letter range inside one joined by the other case's. Escapes
 * (`\d`, `\W`, `\x41`) and group syntax (`(?:`, `(?<name>`) are kept as written.
 */
export function bothCases(source: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === "\\") {
      out += c + (source[i + 1] ?? "");
      i++;
    } else if (!inClass && c === "(" && source[i + 1] === "?") {
      // Group syntax: `(?:`, `(?=`, `(?<name>`: its letters are names, not text.
      const named = /^\(\?<[A-Za-z_$][\w$]*>/.exec(source.slice(i));
      const taken = named ? named[0] : source.slice(i, i + 3);
      out += taken;
      i += taken.length - 1;
    } else if (!inClass && c === "[") {
      inClass = true;
      out += c;
      if (source[i + 1] === "^") out += source[++i];
    } else if (inClass && c === "]") {
      inClass = false;
      out += c;
    } else if (inClass && source[i + 1] === "-" && source[i + 2] !== undefined && source[i + 2] !== "]" && source[i + 2] !== "\\") {
      const hi = source[i + 2]!;
      out += `${c}-${hi}${otherRange(c, hi)}`;
      i += 2;
    } else if (inClass) out += c + otherCase(c);
    else {
      const other = otherCase(c);
      out += other ? `[${c}${other}]` : c;
    }
  }
  return out;
}

/** The letter in its other case (one character of the same length), or "" for anything else. */
function otherCase(c: string): string {
  const lower = c.toLowerCase();
  const upper = c.toUpperCase();
  const other = c === lower ? upper : lower;
  return other !== c && other.length === c.length ? other : "";
}

/** A letter range's other case (`a-f` → `A-F`), or "" when the ends are not letters of one case. */
function otherRange(lo: string, hi: string): string {
  const a = otherCase(lo);
  const b = otherCase(hi);
  const sameCase = (lo === lo.toLowerCase()) === (hi === hi.toLowerCase());
  return a && b && sameCase ? `${a}-${b}` : "";
}

function textOf(line: Buffer | string): string {
  const text = typeof line === "string" ? line : line.toString("utf8");
  const bare = text.endsWith("\r") ? text.slice(0, -1) : text;
  return bare.length > MAX_TEXT_CHARS ? `${bare.slice(0, MAX_TEXT_CHARS)}…` : bare;
}

/** Where a search stopped: `nextLine` is the first line it did not search whole (absent when it reached the end). */
export interface MatchProgress {
  matches: SearchMatch[];
  nextLine: number | undefined;
  /** Lines passed so far (the searched view's lines, once the search reached its end). */
  lines: number;
}

export class LineMatcher {
  private readonly re: LinePattern | null;
  private readonly needle: Buffer;
  /** The 1-based number of the line the carry (or the next byte fed) starts. */
  private line: number;
  /** Lines still to pass over before the first kept for context. */
  private skip: number;
  /** The start of a line not ended yet, and the channel it started in. */
  private carry: Buffer = Buffer.alloc(0);
  private carryEntry = 0;
  /** The carried line passed MAX_LINE_BYTES: the rest of it up to its newline is dropped. */
  private overlong = false;
  /** The last `before` lines passed (context for the next match). */
  private history: string[] = [];
  /** Matches still taking lines after them. */
  private open: SearchMatch[] = [];
  private readonly done: SearchMatch[] = [];
  private bytes = 0;
  /** Matches taken so far (those handed out by progress() included). */
  private taken = 0;
  /** Lines are tried one at a time, not the whole block (set once a block was read slowly: see searchText). */
  private lineByLine = false;
  /** Set once the limit or the byte cap is reached: no more matches are taken, open ones still take their context. */
  private stopAt: number | undefined;

  /** `firstLine`: the number of the first line fed (lines before `query.fromLine - query.before` are skipped). */
  constructor(
    private readonly query: SearchQuery,
    firstLine: number,
  ) {
    this.re = compileQuery(query);
    this.needle = Buffer.from(query.pattern, "utf8");
    const start = Math.max(1, query.fromLine - query.before);
    this.line = firstLine;
    this.skip = Math.max(0, start - firstLine);
  }

  /** True once nothing more is needed (the limit or the byte cap was reached and the open matches have their context). */
  get finished(): boolean {
    return this.stopAt !== undefined && this.open.length === 0;
  }

  /** Feeds a chunk of channel `entryId`; true once finished. */
  feed(entryId: number, data: Buffer): boolean {
    let from = 0;
    while (this.skip > 0 && from < data.length) {
      const nl = data.indexOf(NL, from);
      if (nl === -1) return false;
      from = nl + 1;
      this.skip--;
      this.line++;
    }
    if (from >= data.length) return this.finished;
    let chunk = from > 0 ? data.subarray(from) : data;
    if (this.overlong) {
      const nl = chunk.indexOf(NL);
      if (nl === -1) return this.finished;
      chunk = chunk.subarray(nl + 1);
      this.overlong = false;
      this.endLines(Buffer.concat([this.carry, Buffer.from("\n")]), this.carryEntry);
      this.carry = Buffer.alloc(0);
    }
    if (this.carry.length === 0) this.carryEntry = entryId;
    const block = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const last = block.lastIndexOf(NL);
    if (last === -1) {
      this.carry = block;
      if (block.length > MAX_LINE_BYTES) {
        this.carry = Buffer.from(block.subarray(0, MAX_LINE_BYTES));
        this.overlong = true;
      }
      return this.finished;
    }
    const entryAt = (offset: number) => (offset < this.carry.length ? this.carryEntry : entryId);
    this.endLines(block.subarray(0, last + 1), entryAt);
    this.carry = Buffer.from(block.subarray(last + 1));
    this.carryEntry = entryId;
    return this.finished;
  }

  /** The end of what is stored: a last line without its newline is a line too. */
  end(): MatchProgress {
    if (this.carry.length > 0 && this.skip === 0) {
      this.endLines(Buffer.concat([this.carry, Buffer.from("\n")]), this.carryEntry);
      this.carry = Buffer.alloc(0);
    }
    this.done.push(...this.open);
    this.done.sort((a, b) => a.line - b.line);
    this.open = [];
    return { matches: this.done.splice(0), nextLine: this.stopAt, lines: this.line - 1 };
  }

  /** The matches finished so far (taken), and the first line not searched whole yet. */
  progress(): MatchProgress {
    const pending = this.open[0]?.line;
    const next = Math.min(pending ?? Number.MAX_SAFE_INTEGER, this.stopAt ?? Number.MAX_SAFE_INTEGER, this.line);
    // Matches come out in line order: those after a match still taking its context wait for it.
    const ready = pending === undefined ? this.done.length : this.done.findIndex((match) => match.line > pending);
    return { matches: this.done.splice(0, ready === -1 ? this.done.length : ready), nextLine: next, lines: this.line - 1 };
  }

  /** Whole lines (`block` ends with a newline), the first of them line `this.line`. */
  private endLines(block: Buffer, entry: number | ((offset: number) => number)): void {
    const entryAt = typeof entry === "number" ? () => entry : entry;
    if (this.re) this.searchText(block.toString("utf8"), entryAt);
    else this.searchBytes(block, entryAt);
  }

  private searchBytes(block: Buffer, entryAt: (offset: number) => number): void {
    const lines = new LineCursor(block, this.line);
    const earlier = this.open.length;
    const take = this.stopAt === undefined && this.needle.length > 0;
    let pos = 0;
    while (take && this.stopAt === undefined) {
      const at = block.indexOf(this.needle, pos);
      if (at === -1) break;
      const start = at === 0 ? 0 : block.lastIndexOf(NL, at - 1) + 1;
      const end = block.indexOf(NL, at);
      const number = lines.numberAt(start);
      if (number >= this.query.fromLine) this.matched(number, block, start, end, entryAt(start));
      pos = end + 1;
    }
    this.passLines(block, lines, earlier);
  }

  private searchText(text: string, entryAt: (offset: number) => number): void {
    const re = this.re!;
    const lines = new LineCursor(text, this.line);
    const earlier = this.open.length;
    const started = performance.now();
    let pos = 0;
    while (this.stopAt === undefined && pos < text.length) {
      const index = this.lineByLine ? nextMatchingLine(re, text, pos) : re.find(text, pos);
      if (index === -1) break;
      const start = index === 0 ? 0 : text.lastIndexOf("\n", index - 1) + 1;
      let end = text.indexOf("\n", index);
      if (end === -1) end = text.length;
      const number = lines.numberAt(start);
      // A match of the whole text may run across lines (\s, [^x]): the line alone must match too.
      if (number >= this.query.fromLine && re.test(text.slice(start, end))) {
        // Offsets of the text are characters, not bytes: the channel is the one the line's start byte is in.
        this.matched(number, text, start, end, entryAt(Buffer.byteLength(text.slice(0, start))));
      }
      pos = end + 1;
    }
    // A block read far slower than V8's engine reads (a match in it fell back to the linear-time engine, which then
    // read the whole block): the pattern backtracks here, so from now on each line is tried alone, where a fall-back
    // costs that line only.
    if (!this.lineByLine && text.length > SLOW_BLOCK_CHARS && performance.now() - started > text.length / SLOW_CHARS_PER_MS) this.lineByLine = true;
    this.passLines(text, lines, earlier);
  }

  private matched(number: number, block: Buffer | string, start: number, end: number, entryId: number): void {
    const text = textOf(block.slice(start, end));
    const before = this.contextBefore(block, start, number);
    const after = linesFrom(block, end + 1, this.query.after);
    const cost = [text, ...before, ...after].reduce((sum, line) => sum + line.length, 0);
    if (this.taken > 0 && this.bytes + cost > this.query.maxBytes) {
      this.stopAt = number;
      return;
    }
    this.bytes += cost;
    const match: SearchMatch = { line: number, text, entryId, before, after };
    if (after.length < this.query.after) this.open.push(match);
    else this.done.push(match);
    if (++this.taken >= this.query.limit) this.stopAt = number + 1;
  }

  /** Up to `before` lines before the line at `start` of the block, the ones before the block from the history. */
  private contextBefore(block: Buffer | string, start: number, number: number): string[] {
    const want = Math.min(this.query.before, number - 1);
    const lines = linesBefore(block, start, want);
    if (lines.length < want) lines.unshift(...this.history.slice(this.history.length - (want - lines.length)));
    return lines;
  }

  /** The block's lines are passed: open matches of earlier blocks take the lines after them, the history keeps the last ones. */
  private passLines(block: Buffer | string, lines: LineCursor, earlier: number): void {
    const count = lines.total();
    for (const match of this.open.slice(0, earlier)) {
      const missing = this.query.after - match.after.length;
      if (missing > 0) match.after.push(...linesFrom(block, 0, missing));
    }
    const finished = this.open.filter((match) => match.after.length >= this.query.after);
    if (finished.length > 0) {
      this.open = this.open.filter((match) => match.after.length < this.query.after);
      this.done.push(...finished);
      this.done.sort((a, b) => a.line - b.line);
    }
    if (this.query.before > 0) this.history = this.history.concat(linesBefore(block, block.length, this.query.before)).slice(-this.query.before);
    this.line += count;
  }
}

/** A block of text read slower than this (characters a millisecond) is taken for one the linear-time engine read. */
const SLOW_CHARS_PER_MS = 20_000;
/** Blocks smaller than this are not judged by their time (a timer's grain and a pause would decide). */
const SLOW_BLOCK_CHARS = 16 * 1024;

/** The start of the first line from `pos` of a block of whole lines that holds a match, tried line by line; -1: none. */
function nextMatchingLine(re: LinePattern, text: string, pos: number): number {
  for (let start = pos; start < text.length; ) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    if (re.test(text.slice(start, end))) return start;
    start = end + 1;
  }
  return -1;
}

/** Up to `count` lines ending before offset `end` of a block of whole lines (its last newline at end - 1, or end = 0). */
function linesBefore(block: Buffer | string, end: number, count: number): string[] {
  const lines: string[] = [];
  let stop = end - 1;
  while (lines.length < count && stop >= 0) {
    const from = stop === 0 ? 0 : lastNl(block, stop - 1) + 1;
    lines.unshift(textOf(block.slice(from, stop)));
    stop = from - 1;
  }
  return lines;
}

/** Up to `count` whole lines of a block from offset `start`. */
function linesFrom(block: Buffer | string, start: number, count: number): string[] {
  const lines: string[] = [];
  let from = start;
  while (lines.length < count && from < block.length) {
    const nl = nextNl(block, from);
    if (nl === -1) break;
    lines.push(textOf(block.slice(from, nl)));
    from = nl + 1;
  }
  return lines;
}

const nextNl = (block: Buffer | string, from: number) => (typeof block === "string" ? block.indexOf("\n", from) : block.indexOf(NL, from));
const lastNl = (block: Buffer | string, from: number) => (typeof block === "string" ? block.lastIndexOf("\n", from) : block.lastIndexOf(NL, from));

/** Line numbers of offsets in one block of whole lines, counted forward once. */
class LineCursor {
  private offset = 0;
  private number: number;
  private count: number | undefined;

  constructor(
    private readonly block: Buffer | string,
    first: number,
  ) {
    this.number = first;
  }

  private nextNl(from: number): number {
    return typeof this.block === "string" ? this.block.indexOf("\n", from) : this.block.indexOf(NL, from);
  }

  /** The number of the line starting at `start` (offsets asked for never decrease). */
  numberAt(start: number): number {
    while (this.offset < start) {
      const nl = this.nextNl(this.offset);
      if (nl === -1 || nl >= start) break;
      this.offset = nl + 1;
      this.number++;
    }
    return this.number;
  }

  /** Lines in the block. */
  total(): number {
    if (this.count === undefined) {
      let count = 0;
      for (let nl = this.nextNl(0); nl !== -1; nl = this.nextNl(nl + 1)) count++;
      this.count = count;
    }
    return this.count;
  }
}
