import { createRequire } from "node:module";
import type { Terminal } from "@xterm/headless";
import { escapeFormat } from "../protocol/screen-text.js";
import { type HiddenText, watchHiddenText } from "./hidden-text.js";

/**
 * xterm.js, loaded on the first rendering: ~2 MB of heap that `spool serve` need not hold until a model view is
 * asked for. Required (its CommonJS build), as `import` resolves it differently under tsx (no default export).
 */
const loadXterm = () => createRequire(import.meta.url)("@xterm/headless") as typeof import("@xterm/headless");

/**
 * The terminal the model view is rendered on. Wide enough that ordinary
 * lines do not wrap (a wrapped line is joined back anyway), and tall enough
 * that a cursor-up redraw (Docker's per-layer progress, a test runner's
 * live summary) reaches every row it could reach on a real screen.
 */
export const TERMINAL_COLS = 256;
export const TERMINAL_ROWS = 300;
/** Input is written in batches of at most this many line feeds or characters… */
const BATCH_LINE_FEEDS = 1024;
const BATCH_CHARS = 64 * 1024;
/** …and the rows that scrolled off the screen (no cursor move can reach them any more) are collected once there are this many. */
const HARVEST_ROWS = 1024;
/** Room for the rows one batch can add before they are collected: memory stays bounded whatever the input's size. */
const SCROLLBACK = HARVEST_ROWS + BATCH_LINE_FEEDS + Math.ceil(BATCH_CHARS / TERMINAL_COLS) + 64;

export interface Rendering {
  /**
   * What the terminal finally shows, one entry per logical line (rows joined
   * where the terminal wrapped them): trailing blanks trimmed, trailing empty
   * lines dropped, no escape sequences, format controls (bidi, zero-width, tag characters) written as escapes
   * (`\u{202e}`, by `escapeFormat`, as the CLI shows them).
   */
  lines: string[];
  /** For each input line (0-based, split at `\n`), the index in `lines` of the row where it started (may be `lines.length` or more for trailing blanks). */
  lineStarts: number[];
  /** For each rendered line, the input line that last started on it (or the nearest one before): where to read it raw. */
  sourceLines: number[];
}

export interface RenderOptions {
  /**
   * The text is what was typed to a command (its stdin, channel 0), not what it printed: a carriage
   * return (Enter on a terminal) ends a line as a line feed does, so the lines typed are shown one under
   * the other instead of each going back over the one before; a backspace typed (DEL or ^H) erases the
   * character before it, as a line editor does.
   */
  input?: boolean | undefined;
}

/**
 * Typed text with each lone `\r` made a vertical tab: the terminal moves down a row for it (and to the
 * first column, as for `\n`), yet it does not start a new input line, so line numbers keep following the
 * stored lines (split at `\n`). `\r\n` is left as it is: it already ends one line. A backspace key (DEL,
 * which terminals send, or ^H) becomes a step back and a deleted character, so what it erased is gone.
 */
function typedLines(text: string): string {
  return text.replace(/\r(?!\n)/g, "\v").replace(/[\u007f\b]/g, "\b\u001b[P");
}

/** Whether `text` ends a line: with `\n`, or with `\r` when it is typed input. */
export function endsLine(text: string, options: RenderOptions = {}): boolean {
  return text.endsWith("\n") || (options.input === true && text.endsWith("\r"));
}

const writeAsync = (term: InstanceType<typeof Terminal>, data: string) => new Promise<void>((resolve) => term.write(data, resolve));

/** Line feeds in the terminal's sense: LF, VT and FF all move down a row. */
const isLineFeed = (code: number) => code === 10 || code === 11 || code === 12;

/**
 * Each text a cursor move hid is shown before the line that took its place, then the sequences that moved there
 * as the CLI writes them: `rm -rf ~`, then `\e[1A\e[2Kecho hello` on the next line (one rendered line still).
 */
function showHidden(lines: string[], rowLine: Int32Array, hidden: HiddenText[]): void {
  if (hidden.length === 0) return;
  const before = new Map<number, string>();
  for (const h of hidden) {
    const line = rowLine[h.row];
    if (line === undefined) continue;
    before.set(line, `${before.get(line) ?? ""}${h.text.trimEnd()}\n${h.escapes}`);
  }
  for (const [line, text] of before) lines[line] = text + lines[line]!;
}

/** The end of the batch written from `pos`: up to BATCH_LINE_FEEDS line feeds or BATCH_CHARS characters, ending after a `\n` when there is one. */
function batchEnd(text: string, pos: number): number {
  let end = pos;
  let batchFeeds = 0;
  let lastNewline = -1;
  const limit = Math.min(text.length, pos + BATCH_CHARS);
  while (end < limit && batchFeeds < BATCH_LINE_FEEDS) {
    const code = text.charCodeAt(end);
    end++;
    if (isLineFeed(code)) {
      batchFeeds++;
      if (code === 10) lastNewline = end;
    }
  }
  if (end < text.length && lastNewline > pos) end = lastNewline;
  // Do not split a surrogate pair between two writes.
  if (end < text.length && end > pos + 1 && (text.charCodeAt(end - 1) & 0xfc00) === 0xd800) end--;
  return end;
}

/** Wrapped rows joined into logical lines, with the line of each row. */
function joinWrapped(rowTexts: string[], rowWrapped: boolean[]): { lines: string[]; rowLine: Int32Array } {
  const lines: string[] = [];
  const rowLine = new Int32Array(rowTexts.length + 1);
  for (let r = 0; r < rowTexts.length; r++) {
    if (rowWrapped[r] && lines.length > 0) lines[lines.length - 1] += rowTexts[r]!;
    else lines.push(rowTexts[r]!);
    rowLine[r] = lines.length - 1;
  }
  return { lines, rowLine };
}

/** The rendered line where each input line starts (from the row it started on), and the input line of each rendered line. */
function lineMaps(lineStartRows: number[], rowLine: Int32Array, rows: number, lineCount: number): { lineStarts: number[]; sourceLines: number[] } {
  const lineStarts = lineStartRows.map((row) => (row < rows ? rowLine[row]! : rows));
  const sourceLines = new Array<number>(lineCount);
  for (let i = 0; i < lineStarts.length; i++) if (lineStarts[i]! < lineCount) sourceLines[lineStarts[i]!] = i;
  for (let j = 0; j < lineCount; j++) if (sourceLines[j] === undefined) sourceLines[j] = j > 0 ? sourceLines[j - 1]! : 0;
  return { lineStarts, sourceLines };
}

/**
 * Renders `text` (a window of a channel's output, starting at a line start)
 * on a headless xterm.js terminal and returns the lines it finally shows,
 * with a map between input lines and rendered lines. Cost is linear in the
 * input; memory is bounded (rows that scrolled off are collected as it goes).
 */
export async function renderTerminal(text: string, options: RenderOptions = {}): Promise<Rendering> {
  if (options.input) text = typedLines(text);
  const { Terminal } = loadXterm();
  const term = new Terminal({
    cols: TERMINAL_COLS,
    rows: TERMINAL_ROWS,
    scrollback: SCROLLBACK,
    convertEol: true,
    allowProposedApi: true,
    logLevel: "off",
  });
  try {
    const normal = term.buffer.normal;
    let harvested = 0;
    const rowTexts: string[] = [];
    const rowWrapped: boolean[] = [];
    const collect = (buffer: typeof normal, from: number, to: number) => {
      for (let r = from; r < to; r++) {
        const line = buffer.getLine(r);
        const next = buffer.getLine(r + 1);
        rowTexts.push(line ? line.translateToString(!next?.isWrapped) : "");
        rowWrapped.push(line?.isWrapped ?? false);
      }
    };
    // Text a cursor move hid; before an `ESC[3J` (the harvest's own, or the command's) the scrollback is collected.
    const watcher = watchHiddenText(
      term,
      () => harvested,
      () => {
        const rows = normal.baseY;
        collect(normal, 0, rows);
        harvested += rows;
      },
    );
    /** Absolute row after each line feed the terminal executed. */
    const feedRows: number[] = [];
    term.onLineFeed(() => {
      const row = harvested + normal.baseY + normal.cursorY;
      feedRows.push(row);
      watcher.lineFed(row);
    });
    /** Absolute row where each input line starts: line 0 at row 0, line i+1 after the line feed that ends line i. */
    const lineStartRows: number[] = [0];

    let feeds = 0; // line feeds in the input so far
    let pos = 0;
    while (pos < text.length) {
      const end = batchEnd(text, pos);
      const batch = text.slice(pos, end);
      await writeAsync(term, batch);
      for (let i = 0; i < batch.length; i++) {
        const code = batch.charCodeAt(i);
        if (!isLineFeed(code)) continue;
        feeds++;
        if (code === 10) lineStartRows.push(feedRows[feeds - 1] ?? harvested + normal.baseY + normal.cursorY);
      }
      // Line feeds the terminal swallowed (inside an unterminated OSC or DCS string) did not move the cursor.
      if (feedRows.length < feeds) {
        const here = harvested + normal.baseY + normal.cursorY;
        while (feedRows.length < feeds) feedRows.push(here);
      }
      pos = end;
      // Erase the scrollback (the watcher collects it first); the screen stays as it is.
      if (term.buffer.active.type === "normal" && normal.baseY >= HARVEST_ROWS) await writeAsync(term, "\u001b[3J");
    }
    watcher.settle();
    collect(normal, 0, normal.length);
    // A program that left the alternate screen on (a pager, a full-screen UI) finally shows it.
    if (term.buffer.active.type === "alternate") {
      const alternate = term.buffer.alternate;
      collect(alternate, 0, alternate.length);
      rowWrapped[rowTexts.length - alternate.length] = false;
    }

    const { lines, rowLine } = joinWrapped(rowTexts, rowWrapped);
    showHidden(lines, rowLine, watcher.hidden);
    // Format controls (U+202E, zero-width and tag characters) as escapes: the model reads them, a screen would hide or reorder with them.
    for (let i = 0; i < lines.length; i++) lines[i] = escapeFormat(lines[i]!).trimEnd();
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();

    // A last input line without its newline still counts; a trailing newline opens no new input line.
    if (text.length === 0 || text.charCodeAt(text.length - 1) === 10) lineStartRows.pop();
    return { lines, ...lineMaps(lineStartRows, rowLine, rowTexts.length, lines.length) };
  } finally {
    term.dispose();
  }
}

/** The text a terminal finally shows for `text`: rendered lines joined, ending with a newline when the input ended a line. */
export async function renderTerminalText(text: string, options: RenderOptions = {}): Promise<string> {
  if (text === "") return "";
  const { lines } = await renderTerminal(text, options);
  if (lines.length === 0) return "";
  return `${lines.join("\n")}${endsLine(text, options) ? "\n" : ""}`;
}

/** Renders each line on its own (a fresh screen each), for lines picked out of the middle of a channel: one rendered line each. */
export async function renderEachLine(texts: string[], options: RenderOptions = {}): Promise<string[]> {
  const out: string[] = [];
  for (const text of texts) out.push((await renderTerminal(text.replace(/\n$/, ""), options)).lines.join(" ").trim());
  return out;
}
