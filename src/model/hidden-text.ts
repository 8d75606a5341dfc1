import type { IBuffer, IDisposable, Terminal } from "@xterm/headless";

/**
 * What a command's cursor moves hid from the model view. Rendering on a terminal applies cursor-up, position,
 * erase and scroll sequences, so text printed on an earlier line can be erased or drawn over (`rm -rf ~`, then
 * `ESC[1A ESC[2K` and `echo hello`: a screen shows only `echo hello`). This watcher notes each earlier line's text
 * when a sequence could reach it and, when the line changes, keeps the text it lost with the sequences that moved
 * there, written as the CLI writes them (`\e[1A\e[2K`). Only those sequences are hooked (xterm's parser calls
 * back for them): text without escapes costs nothing more than a comparison per line feed.
 *
 * What stays clean: the line the cursor is on when nothing was printed below it (a progress bar redrawn with `\r`
 * or `ESC[K`, a line edited in place), text appended to an earlier line, and an earlier line redrawn as a status
 * line does (Docker's per-layer line): the new text keeps the old one's label (`e9aef93137af: …`, up to the first
 * `: `, one word) or differs from it only in digits, bar and spinner characters (`[==>  ] 12.3MB`, `⠋`).
 */

/** A line's lost text, on its absolute row, and the sequences (as text) that preceded its loss. */
export interface HiddenText {
  row: number;
  text: string;
  escapes: string;
}

/** The sequences kept with one hidden text, at most this long as gathered and as shown (the rest left out: `…`). */
const MAX_GATHERED = 2000;
const MAX_ESCAPES = 120;
/** A sequence (or a pair) repeated: `\e[1A\e[2K` eight times is shown `(\e[1A\e[2K)×8`. */
const REPEATED = /((?:\\e\[[^A-Za-z@`]*[A-Za-z@`]){1,2}?)\1{2,}/g;

/** The sequences as shown: repeats counted, cut at MAX_ESCAPES. */
export function shownEscapes(escapes: string): string {
  const counted = escapes.replace(REPEATED, (run, unit: string) => `(${unit})×${run.length / unit.length}`);
  return counted.length > MAX_ESCAPES ? `${counted.slice(0, MAX_ESCAPES)}…` : counted;
}
/** A label (`e9aef93137af: `) is one word of at most this many characters before `: `. */
const MAX_LABEL = 40;

/** Digits and the characters progress bars and spinners are drawn with, each run as one. */
const PROGRESS = /[0-9.,]+|[\s=#>\-_*|/\\<[\]()%█▉▊▋▌▍▎▏░▒▓■□━─⣀-⣿⠀-⡿]+/g;
const progressShape = (text: string) => text.replace(PROGRESS, (run) => (/[0-9]/.test(run) ? "0" : " "));

function labelOf(text: string): string | undefined {
  const end = text.indexOf(": ");
  if (end <= 0 || end > MAX_LABEL) return undefined;
  const label = text.slice(0, end + 2);
  return /\s/.test(label.slice(0, -1)) ? undefined : label;
}

/** Whether a line's text going from `before` to `after` hides something (see the module's comment). */
export function hidesText(before: string, after: string): boolean {
  const old = before.trim();
  if (old === "") return false;
  const now = after.trim();
  if (now.includes(old)) return false;
  const label = labelOf(old);
  if (label !== undefined && now.startsWith(label)) return false;
  return progressShape(old) !== progressShape(now);
}

type Params = (number | number[])[];

/** A CSI sequence as the CLI writes it: `\e[1A`, `\e[?6h`; a lone default parameter is left out (`\e[K`). */
function csiText(prefix: string, params: Params, final: string): string {
  const shown = params.length === 1 && params[0] === 0 ? "" : params.map((p) => (Array.isArray(p) ? p.join(":") : p)).join(";");
  return `\\e[${prefix}${shown}${final}`;
}

const first = (params: Params, fallback: number) => {
  const p = params[0];
  const n = typeof p === "number" ? p : (p?.[0] ?? 0);
  return n > 0 ? n : fallback;
};

export interface HiddenTextWatcher extends IDisposable {
  /** The terminal moved down a line, the cursor now on absolute row `row`. */
  lineFed(row: number): void;
  /** Compares every watched line before rows leave the buffer (a harvest) and stops watching them. */
  settle(): void;
  /** Everything hidden, in the order it was hidden (after `settle`). */
  readonly hidden: HiddenText[];
}

/**
 * Watches `term`'s normal buffer. `harvested()` is the number of rows already collected off its top (absolute row
 * = harvested + buffer row); `eraseScrollback()` is called before an `ESC[3J` erases the scrollback, to collect it
 * first (what scrolled off stays in the view: it was printed).
 */
export function watchHiddenText(term: InstanceType<typeof Terminal>, harvested: () => number, eraseScrollback: () => void): HiddenTextWatcher {
  const watch = new LineWatch(term, harvested);
  const disposables = hookSequences(term, watch, eraseScrollback);
  return {
    lineFed: (row) => watch.lineFed(row),
    settle: () => watch.settle(),
    hidden: watch.hidden,
    dispose() {
      for (const d of disposables) d.dispose();
    },
  };
}

/** The earlier lines one watch looks at, and what it found hidden on them. */
class LineWatch {
  private readonly normal: IBuffer;
  /** The furthest row the cursor reached: rows above it are earlier lines; it is the line being written. */
  private highWater = 0;
  /** Earlier lines a sequence could reach, with their text when last looked at. */
  private readonly seen = new Map<number, string>();
  private pending = "";
  private pendingAt = -1;
  private savedRow: number | undefined;
  /** Lines were inserted, deleted or scrolled since the watch began: a text moved to another row is not hidden. */
  private shifted = false;
  readonly hidden: HiddenText[] = [];
  // Which buffer is active, followed by its event (the API's getters cost more than the rest of a handler).
  private normalActive: boolean;

  constructor(
    private readonly term: InstanceType<typeof Terminal>,
    private readonly harvested: () => number,
  ) {
    this.normal = term.buffer.normal;
    this.normalActive = term.buffer.active.type === "normal";
  }

  top(): number {
    return this.harvested() + this.normal.baseY;
  }
  cursorRow(): number {
    return this.top() + this.normal.cursorY;
  }
  private rowText(row: number): string {
    return this.normal.getLine(row - this.harvested())?.translateToString(true) ?? "";
  }
  bufferChanged(normal: boolean): void {
    this.normalActive = normal;
  }
  onNormal(): boolean {
    return this.normalActive;
  }

  /**
   * A line erased and left blank keeps its earlier text until something is written on it (a redraw erases each
   * line, moves, then writes it anew) or the watch ends (`final`): then blank hides the text too.
   */
  private compare(row: number, final = false): void {
    const before = this.seen.get(row);
    if (before === undefined) return;
    const now = this.rowText(row);
    if (now === before || (!final && now.trim() === "")) return;
    if (hidesText(before, now) && !(this.shifted && this.onScreen(before))) {
      this.hidden.push({ row, text: before, escapes: shownEscapes(this.pending) });
      this.pending = "";
    }
    this.seen.set(row, now);
  }
  private onScreen(text: string): boolean {
    for (let r = 0; r < this.normal.length; r++) if (this.normal.getLine(r)?.translateToString(true) === text) return true;
    return false;
  }
  private compareAll(): void {
    for (const row of this.seen.keys()) this.compare(row);
  }
  settle(): void {
    for (const row of this.seen.keys()) this.compare(row, true);
    this.seen.clear();
    this.pending = "";
    this.shifted = false;
  }

  /** A sequence that leaves the cursor's line (or edits it): the line is compared with what it showed. */
  leave(): false {
    if (!this.onNormal()) return false;
    const row = this.cursorRow();
    if (row > this.highWater) this.highWater = row;
    else this.compare(row);
    return false;
  }
  /**
   * A sequence that can change rows from `lo` (absolute; undefined: the screen's top) down: earlier lines in
   * reach are watched from now on, and the sequence is kept as text to show before what it hides.
   */
  reach(lo: number | undefined, text: string | (() => string), shifts = false, edit = false): false {
    if (!this.onNormal()) return false;
    const row = this.cursorRow();
    if (row > this.highWater) this.highWater = row;
    else if (!edit) this.compare(row);
    const screenTop = this.top();
    const from = lo === undefined || lo < screenTop ? screenTop : lo;
    if (from >= this.highWater) return false; // the line being written only: a same-line edit
    if (shifts) {
      this.compareAll();
      this.shifted = true;
    }
    // An excursion from the line being written starts a new run of sequences (one right after another, the
    // cursor where the last one left it, continues the run: `ESC[2J ESC[H`).
    const at = row * this.term.cols + this.normal.cursorX;
    if (row >= this.highWater && at !== this.pendingAt) this.pending = "";
    for (let r = from; r < this.highWater; r++) if (!this.seen.has(r)) this.seen.set(r, this.rowText(r));
    if (this.pending.length < MAX_GATHERED) this.pending += typeof text === "string" ? text : text();
    this.pendingAt = at;
    return false;
  }
  /** Save the cursor: its row is where a restore moves back to. */
  save(): false {
    if (this.onNormal()) this.savedRow = this.cursorRow();
    return false;
  }
  /** Restore the cursor: the rows from the saved one down are in reach. */
  restore(text: string | (() => string)): false {
    return this.reach(this.savedRow, text);
  }

  lineFed(row: number): void {
    if (this.seen.size > 0) this.compare(row - 1);
    if (row > this.highWater) {
      this.highWater = row;
      if (this.seen.size > 0) this.settle();
    }
  }
}

/** Hooks the sequences that can hide text into `term`'s parser, each handing its reach to `watch`. */
function hookSequences(term: InstanceType<typeof Terminal>, watch: LineWatch, eraseScrollback: () => void): IDisposable[] {
  const disposables: IDisposable[] = [term.buffer.onBufferChange((b) => watch.bufferChanged(b.type === "normal"))];
  const csi = (final: string, handler: (params: Params) => boolean, prefix?: string) =>
    disposables.push(term.parser.registerCsiHandler(prefix === undefined ? { final } : { prefix, final }, handler));
  const esc = (final: string, handler: () => boolean, intermediates?: string) =>
    disposables.push(term.parser.registerEscHandler(intermediates === undefined ? { final } : { intermediates, final }, handler));
  const leave = () => watch.leave();

  // Moves up, or to a row given: the rows between there and the line being written are in reach.
  for (const final of ["A", "F"]) csi(final, (p) => watch.reach(watch.cursorRow() - first(p, 1), () => csiText("", p, final)));
  for (const final of ["H", "f", "d"]) csi(final, (p) => watch.reach(watch.top() + first(p, 1) - 1, () => csiText("", p, final)));
  // Moves down or along the line: the line left is compared.
  for (const final of ["B", "E", "e"]) csi(final, leave);
  esc("D", leave);
  esc("E", leave);
  // Save and restore the cursor.
  const save = () => watch.save();
  esc("7", save);
  csi("s", save);
  esc("8", () => watch.restore("\\e8"));
  csi("u", (p) => watch.restore(() => csiText("", p, "u")));
  // Erases and edits of the cursor's line (an earlier line only when the cursor was moved up to it).
  // They edit the line in place, as `\r` does: what was written on it since the cursor came is not compared (a
  // same-line edit), what it showed before the cursor came is.
  for (const final of ["K", "X", "P", "@"]) csi(final, (p) => watch.reach(watch.cursorRow(), () => csiText("", p, final), false, true));
  csi("K", (p) => watch.reach(watch.cursorRow(), () => csiText("?", p, "K"), false, true), "?");
  // Erase in display: below the cursor, above it, all of it; 3 erases the scrollback, collected first.
  const eraseDisplay = (prefix: string) => (p: Params) => {
    const mode = first(p, 0);
    if (mode === 3) {
      if (watch.onNormal()) {
        watch.settle();
        eraseScrollback();
      }
      return false;
    }
    return watch.reach(mode === 0 ? watch.cursorRow() : undefined, () => csiText(prefix, p, "J"), true);
  };
  csi("J", eraseDisplay(""));
  csi("J", eraseDisplay("?"), "?");
  // Lines inserted, deleted or scrolled, a scroll region set (the cursor goes home), a reverse index.
  for (const final of ["L", "M"]) csi(final, (p) => watch.reach(watch.cursorRow(), () => csiText("", p, final), true));
  for (const final of ["S", "T", "r"]) csi(final, (p) => watch.reach(undefined, () => csiText("", p, final), true));
  esc("M", () => watch.reach(undefined, "\\eM", true));
  // Origin mode moves the cursor home; 1048 restores it.
  const privateMode = (final: "h" | "l") => (p: Params) =>
    p.some((m) => m === 6 || (m === 1048 && final === "l")) ? watch.reach(undefined, () => csiText("?", p, final), true) : false;
  csi("h", privateMode("h"), "?");
  csi("l", privateMode("l"), "?");
  // A full reset and the screen alignment test (a screen of `E`) are not applied: they would wipe what was printed.
  esc("c", () => true);
  esc("8", () => true, "#");
  return disposables;
}
