/*
 * The one place that decides what of a command's (or a model's) text reaches a screen as text: `ScreenText`
 * turns untrusted text into text safe for a terminal (the CLI's terminal writer, src/cli/terminal-writer.ts, and
 * the web page's terminals, src/web/page/terminal.ts, both draw through it), and `escapeFormat` writes the
 * invisible format controls as escapes wherever text is read rather than drawn (the model's view of output,
 * src/model/terminal.ts; MCP and ACP text carry that view). Pure: no Node, no DOM.
 */

/**
 * Format controls: the bidi controls (U+202E RIGHT-TO-LEFT OVERRIDE reverses what follows on a screen that applies
 * the bidi algorithm: a browser does, some terminals do), zero-width characters, the tag characters (U+E0000-E007F,
 * invisible text a model still reads), soft hyphen, BOM, and the line and paragraph separators: general categories
 * Cf, Zl, Zp. The zero-width joiner (U+200D) is kept: it joins an emoji sequence and hides nothing by itself.
 */
const FORMAT = /(?!\u200d)[\p{Cf}\p{Zl}\p{Zp}]/u;
const FORMAT_ALL = new RegExp(FORMAT.source, "gu");

/** A format control's escape: U+202E as `\u{202e}`. */
const formatEscape = (code: number) => `\\u{${code.toString(16)}}`;

/** Text with every format control written as its escape (`\u{202e}`); everything else as it is. */
export function escapeFormat(text: string): string {
  return text.replace(FORMAT_ALL, (c) => formatEscape(c.codePointAt(0)!));
}

/** Text that is printable as it is, whatever comes before it: no control, no C1, no format control, no escape. */
const PLAIN = /[^\u0000-\u001f\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]+/uy;

/** A whole SGR sequence (at most MAX_SGR characters) or line edit, its final character captured. */
const WHOLE = /\u001b\[(?:[0-9;:]{0,61}(m)|[0-9;]{0,16}([@CDGKPX]))/y;

/** A CSI sequence that edits the cursor's line only (see `lineEdits`). */
const LINE_EDIT = /^\u001b\[[0-9;]{0,16}[@CDGKPX]$/;

/** The longest SGR sequence passed whole; a longer one is shown as text. */
const MAX_SGR = 64;

export interface ScreenTextOptions {
  /**
   * Written at the start of every line the text occupies (a terminal only); null: none. It must be printable,
   * `gutterCells` wide.
   */
  gutter?: string | null;
  gutterCells?: number;
  /** The terminal's width in cells (wrapping is done here, before the terminal would); null: not wrapped. */
  width?: () => number | null;
  /**
   * Also passed whole (without a gutter only): the edits that stay on the cursor's line — cursor left and right
   * (`CSI n D`, `CSI n C`), to a column (`CSI n G`), erase in line (`CSI n K`), insert, delete and erase
   * characters (`CSI n @`, `CSI n P`, `CSI n X`) — so a line editor's echo and a progress line draw as they
   * should; nothing that reaches another line (up, down, to a row, scroll, erase in display) is among them. On a
   * line where an escape has been shown as text, they are shown as text too, so none erases what was shown.
   */
  lineEdits?: boolean;
}

/**
 * The pure transformer: untrusted text in, text safe for a terminal out. Stateful across chunks: an SGR
 * sequence split between two chunks is held until it is whole, and the column is known across them.
 */
export class ScreenText {
  #held = "";
  /** Whether the gutter has been written on the current line. */
  #lineOpen = false;
  /** Cells used after the gutter on the current line (an upper bound when not `#exact`). */
  #col = 0;
  /** Whether `#col` is exact (only ASCII and Latin text since the line started): a backspace is kept only then. */
  #exact = true;
  /**
   * Whether nothing is on the current line: nothing written since the last newline (a carriage return goes back
   * to its start but leaves what is on it, so what Spool writes next starts a new line).
   */
  #atLineStart = true;
  /**
   * The SGR sequences in force (since the last full reset `ESC[0m`): the gutter is drawn with attributes off, so
   * no colour or concealment of the text's own can hide it, and these are replayed after it.
   */
  #sgr = "";
  /** An escape has been shown as text on this line (since the last newline): no line edit passes on it any more. */
  #escapeShown = false;

  constructor(private readonly options: ScreenTextOptions = {}) {}

  /** Whether the cursor is at the start of an empty line after what was returned so far. */
  get atLineStart(): boolean {
    return this.#atLineStart && this.#held === "";
  }

  push(text: string): string {
    let out = "";
    const fast = (this.options.gutter ?? null) === null;
    for (let i = 0; i < text.length; ) {
      if (fast && this.#held === "") {
        // Without a gutter no column is kept: a run of plain text goes through whole.
        PLAIN.lastIndex = i;
        if (PLAIN.test(text)) {
          out += text.slice(i, PLAIN.lastIndex);
          i = PLAIN.lastIndex;
          this.#atLineStart = false;
          this.#exact = false;
          continue;
        }
        const code = text.charCodeAt(i);
        if (code === 0x0a || code === 0x0d) {
          out += this.#char(text[i]!);
          i++;
          continue;
        }
        if (code === 0x1b) {
          // A whole SGR sequence or line edit in the text: through at once.
          WHOLE.lastIndex = i;
          const m = WHOLE.exec(text);
          if (m && (m[1] === "m" || (this.options.lineEdits && !this.#escapeShown))) {
            const sequence = m[0];
            if (m[1] === "m") this.#sgr = /^\u001b\[0*m$/.test(sequence) ? "" : keepLast(this.#sgr + sequence);
            out += sequence;
            i = WHOLE.lastIndex;
            continue;
          }
        }
      }
      const code = text.codePointAt(i)!;
      const c = code > 0xffff ? text.slice(i, i + 2) : text[i]!;
      i += c.length;
      if (this.#held !== "") {
        const held = this.#held + c;
        if (/^\u001b\[[0-9;:]*m$/.test(held) && held.length <= MAX_SGR) {
          this.#held = "";
          this.#sgr = /^\u001b\[0*m$/.test(held) ? "" : keepLast(this.#sgr + held);
          out += held;
          continue;
        }
        if (this.options.lineEdits && (this.options.gutter ?? null) === null && !this.#escapeShown && LINE_EDIT.test(held)) {
          this.#held = "";
          out += held;
          continue;
        }
        if (/^\u001b(\[[0-9;:]*)?$/.test(held) && held.length < MAX_SGR) {
          this.#held = held;
          continue;
        }
        // Not an SGR sequence: its escape is shown, and what followed is text again.
        out += this.#shown(this.#held);
        this.#held = "";
      }
      if (c === "\u001b") this.#held = c;
      else out += this.#char(c);
    }
    return out;
  }

  /** What is held (the start of a sequence at the end of the text), shown; call at the end of the text. */
  end(): string {
    const held = this.#held;
    this.#held = "";
    return held ? this.#shown(held) : "";
  }

  /** What is held, shown, and the colours the text turned on, turned off; the line is left open. */
  endColours(): string {
    let out = this.end();
    if (this.#sgr) out += "\u001b[0m";
    this.#sgr = "";
    return out;
  }

  /**
   * Ends the block: what is held is shown, colours it turned on are turned off, and the line is ended if
   * anything is on it (what follows starts on a line of its own, in its own colours).
   */
  endLine(): string {
    const out = this.endColours();
    if (this.#atLineStart) return out;
    this.#newLine();
    return `${out}\n`;
  }

  #newLine(): void {
    this.#lineOpen = false;
    this.#col = 0;
    this.#exact = true;
    this.#atLineStart = true;
  }

  /** Held text that is not an SGR sequence: each character shown as it is, its escape as `^[`. */
  #shown(text: string): string {
    this.#escapeShown = true;
    let out = "";
    for (const c of text) out += this.#char(c);
    return out;
  }

  #char(c: string): string {
    const code = c.codePointAt(0)!;
    const gutter = this.options.gutter ?? null;
    if (c === "\n") {
      this.#newLine();
      this.#escapeShown = false;
      return "\n";
    }
    if (c === "\r") {
      // The line is written over from its start: the gutter is drawn again before the next character.
      this.#lineOpen = false;
      this.#col = 0;
      this.#exact = true;
      return "\r";
    }
    if (c === "\t") {
      if (gutter === null) return this.#printable("\t", 0);
      const spaces = 8 - (this.#col % 8);
      let out = "";
      for (let i = 0; i < spaces; i++) out += this.#printable(" ", 1);
      return out;
    }
    if (c === "\b") {
      if (gutter === null) return "\b";
      // Back over a cell written since the gutter, never into it.
      if (this.#exact && this.#col > 0) {
        this.#col--;
        return "\b";
      }
      return this.#printable("^H", 2);
    }
    if (code < 0x20) return this.#printable(`^${String.fromCharCode(code + 0x40)}`, 2);
    if (code === 0x7f) return this.#printable("^?", 2);
    if (code >= 0x80 && code <= 0x9f) return this.#printable(`\\x${code.toString(16)}`, 4);
    if (FORMAT.test(c)) {
      const shown = formatEscape(code);
      return this.#printable(shown, shown.length);
    }
    return this.#printable(c, cells(code));
  }

  /** Printable text `width` cells wide: the gutter first on a fresh line, and a line break of Spool's before the margin. */
  #printable(text: string, width: number): string {
    const gutter = this.options.gutter ?? null;
    let out = "";
    if (gutter !== null) {
      const limit = this.#textWidth();
      if (this.#lineOpen && limit !== null && this.#col + width > limit) {
        out += "\r\n";
        this.#newLine();
      }
      if (!this.#lineOpen) {
        out += this.#sgr ? `\u001b[0m${gutter}${this.#sgr}` : gutter;
        this.#lineOpen = true;
      }
    }
    this.#col += width;
    if (width !== 1 || text.length !== 1 || text.codePointAt(0)! > 0x2ff) this.#exact = false;
    this.#atLineStart = false;
    return out + text;
  }

  /** Cells a line holds after the gutter, the terminal's last column left empty (no pending wrap). */
  #textWidth(): number | null {
    const width = this.options.width?.() ?? null;
    if (width === null || width <= 0) return null;
    return Math.max(8, width - (this.options.gutterCells ?? 0) - 1);
  }
}

/** The latest whole SGR sequences of `sgr`, at most 8 × MAX_SGR characters of them (the oldest dropped whole). */
function keepLast(sgr: string): string {
  if (sgr.length <= MAX_SGR * 8) return sgr;
  const from = sgr.indexOf("\u001b", sgr.length - MAX_SGR * 8);
  return from === -1 ? "" : sgr.slice(from);
}

/**
 * The cells a character takes, never fewer than a terminal gives it: ASCII and the Latin, Greek and Cyrillic
 * letters one, anything else two (wide CJK and emoji are two; a combining mark counted two only wraps early).
 */
function cells(code: number): number {
  if (code < 0x7f) return 1;
  if ((code >= 0xa0 && code <= 0x2ff) || (code >= 0x370 && code <= 0x52f)) return 1;
  return 2;
}
