import { StringDecoder } from "node:string_decoder";
import { inForeground } from "./foreground.js";

/*
 * Every byte Spool did not write itself — a model's streamed text, a command's output, a title, a name, an
 * error from the server — reaches a terminal through this module, as Git's sideband sanitizer passes a
 * server's messages: printable text, colours and attributes (SGR, `ESC [ … m`) and plain line control
 * (newline, carriage return, tab, backspace) go through; every other control is shown in caret notation
 * (ESC as `^[`, BEL as `^G`, DEL as `^?`) or as an escape (a C1 control as `\x9b`, a bidi control as
 * `\u{202e}`), so it is read, not obeyed. Nothing untrusted can move the cursor, set a scroll region, switch
 * wrapping, origin mode, the character set or the alternate screen, hide the cursor, or start an OSC, DCS,
 * APC, PM or SOS string (a title, a clipboard write, a hyperlink): the only escape character the terminal
 * gets from it starts an SGR sequence checked whole.
 *
 * On a terminal, untrusted text is also drawn in a block of its own: every line it occupies starts with a
 * gutter (`│ `) that Spool's own lines never start with, and lines are wrapped by Spool before the terminal
 * would, so nothing from a model or a command can put text at the start of a line and pass for Spool's
 * ("▶ proposal", "Accept?"). `spool attach` is the one place output goes raw (README).
 */

/** Written before every decision prompt and facts block on a terminal: its state as Spool needs it to draw. */
export const TERMINAL_RESET = [
  "\u001b[?1047l", // leave the alternate screen (1047, unlike 1049, restores no saved cursor someone else set)
  "\u001b7", // keep where the cursor is: the next two move it home
  "\u001b[?6l", // origin mode off
  "\u001b[r", // scroll region: the whole screen
  "\u001b8", // back where it was (the region is the whole screen now, so origin mode, if restored, moves nothing)
  "\u001b[?7h", // wrap at the margin
  "\u001b(B", // G0 is ASCII
  "\u000f", // SI: G0 in use
  "\u001b[0m", // attributes off
  "\u001b[?25h", // cursor visible
].join("");

/** The longest SGR sequence passed whole; a longer one is shown as text. */
const MAX_SGR = 64;

/** Bidi controls: they reorder text on terminals that apply the bidi algorithm (the gutter too). */
const BIDI = /\p{Bidi_Control}/u;

export interface ScreenTextOptions {
  /**
   * Written at the start of every line the text occupies (a terminal only); null: none. It must be printable,
   * `gutterCells` wide.
   */
  gutter?: string | null;
  gutterCells?: number;
  /** The terminal's width in cells (wrapping is done here, before the terminal would); null: not wrapped. */
  width?: () => number | null;
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

  constructor(private readonly options: ScreenTextOptions = {}) {}

  /** Whether the cursor is at the start of an empty line after what was returned so far. */
  get atLineStart(): boolean {
    return this.#atLineStart && this.#held === "";
  }

  push(text: string): string {
    let out = "";
    for (const c of text) {
      if (this.#held !== "") {
        const held = this.#held + c;
        if (/^\u001b\[[0-9;:]*m$/.test(held) && held.length <= MAX_SGR) {
          this.#held = "";
          this.#sgr = /^\u001b\[0*m$/.test(held) ? "" : keepLast(this.#sgr + held);
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
    let out = "";
    for (const c of text) out += this.#char(c);
    return out;
  }

  #char(c: string): string {
    const code = c.codePointAt(0)!;
    const gutter = this.options.gutter ?? null;
    if (c === "\n") {
      this.#newLine();
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
    if (BIDI.test(c)) {
      const shown = `\\u{${code.toString(16)}}`;
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

/** Untrusted text made safe for a terminal in one go (an error message, a name): no gutter, nothing held. */
export function screenSafe(text: string): string {
  const t = new ScreenText();
  return t.push(text) + t.end();
}

type Sink = Pick<NodeJS.WriteStream, "write"> & { isTTY?: boolean; columns?: number };

/** Which kind of untrusted text a block holds; a new kind starts on a line of its own. */
export type BlockKind = "model" | "output";

/**
 * The thin writer: one per terminal (stdout and stderr of one command share the screen, so they share its
 * column). Untrusted text goes through `untrusted()`, Spool's own lines through `own()`, and `reset()` comes
 * before anything a person decides on.
 */
export class TerminalWriter {
  readonly tty: boolean;
  #text: ScreenText;
  #kind: BlockKind | null = null;
  /** Spool's own text left a line open (a question): untrusted text starts below it. */
  #ownLineOpen = false;
  #decoders = new Map<string, StringDecoder>();

  constructor(
    private readonly out: Sink,
    private readonly err: Sink = out,
    options: { gutter?: string; colour?: (text: string) => string } = {},
  ) {
    this.tty = Boolean(out.isTTY);
    const gutter = options.gutter ?? "│ ";
    this.#text = new ScreenText(
      this.tty
        ? { gutter: (options.colour ?? ((t: string) => t))(gutter), gutterCells: [...gutter].length, width: () => out.columns ?? null }
        : { gutter: null },
    );
  }

  get atLineStart(): boolean {
    return this.#text.atLineStart;
  }

  /** Untrusted text (a Buffer is decoded as UTF-8, a character split between chunks kept whole), in a block of `kind`. */
  untrusted(data: string | Buffer, options: { kind: BlockKind; stream?: "out" | "err"; colour?: (text: string) => string }): void {
    const stream = options.stream ?? "out";
    let text: string;
    if (typeof data === "string") text = data;
    else {
      let decoder = this.#decoders.get(stream);
      if (!decoder) this.#decoders.set(stream, (decoder = new StringDecoder("utf8")));
      text = decoder.write(data);
    }
    let safe = "";
    if (this.#ownLineOpen) {
      safe += "\n";
      this.#ownLineOpen = false;
    }
    if (this.#kind !== options.kind) {
      safe += this.#text.endLine();
      this.#kind = options.kind;
    }
    safe += this.#text.push(text);
    if (safe === "") return;
    (stream === "err" ? this.err : this.out).write(options.colour ? options.colour(safe) : safe);
  }

  /** Ends an untrusted block: what is held is shown, and the next text starts on a new line. */
  endBlock(): void {
    const rest = this.#text.endLine();
    this.#kind = null;
    if (rest) this.out.write(rest);
  }

  /**
   * Spool's own text, on a line of its own (an open untrusted line, or a question of its own left open, is ended
   * first, unless `sameLine`: the answer echoed after its question); `text` ends with a newline or not.
   */
  own(text: string, options: { sameLine?: boolean } = {}): void {
    this.endBlock();
    if (text === "") return;
    if (this.#ownLineOpen && !options.sameLine) this.out.write("\n");
    this.out.write(text);
    this.#ownLineOpen = !text.endsWith("\n");
  }

  /** At the end: whatever line is open (untrusted or Spool's) is ended. */
  endLine(): void {
    this.endBlock();
    if (this.#ownLineOpen) this.out.write("\n");
    this.#ownLineOpen = false;
  }

  /** Whether the cursor is at the start of a line (nothing open, Spool's or not). */
  get lineClear(): boolean {
    return this.#text.atLineStart && !this.#ownLineOpen;
  }

  /** Before a facts block or a decision prompt: the terminal's state reset (a terminal only), on a fresh line. */
  reset(): void {
    this.endBlock();
    if (this.tty && inForeground()) this.out.write(TERMINAL_RESET);
  }
}

/**
 * The reset before a facts block or a decision (`spool pending`, `spool approve`), when `stream` is a terminal
 * and this process the job in front (a background job leaves the screen of the one in front alone).
 */
export function resetTerminal(stream: Sink = process.stdout): void {
  if (stream.isTTY && inForeground()) stream.write(TERMINAL_RESET);
}

/**
 * A command's output on its way to stdout (channel 1) and stderr (channel 2), for `spool tail`: on a terminal it is
 * untrusted text like any other, made safe and drawn under the gutter (as Git writes "remote: " before every line
 * of a server's), so what a command printed cannot pass for a later `spool pending` listing; to a file or a pipe it
 * goes byte for byte (the data, for a program).
 */
export function commandOutput(
  out: Sink = process.stdout,
  err: Sink = process.stderr,
  gutter?: (text: string) => string,
): { write(channel: number, data: Buffer): boolean; end(): void } {
  // One writer for the terminal both go to (they share its columns); one for a terminal alone.
  const both = out.isTTY && err.isTTY ? new TerminalWriter(out, err, { ...(gutter ? { colour: gutter } : {}) }) : null;
  const alone = (stream: Sink) => (stream.isTTY ? (both ?? new TerminalWriter(stream, stream, { ...(gutter ? { colour: gutter } : {}) })) : null);
  const writers = { 1: alone(out), 2: alone(err) };
  return {
    write(channel, data) {
      const stream = channel === 2 ? err : out;
      const writer = channel === 2 ? writers[2] : writers[1];
      if (!writer) return stream.write(data);
      writer.untrusted(data, { kind: "output", stream: channel === 2 ? "err" : "out" });
      return true;
    },
    end() {
      for (const writer of new Set([writers[1], writers[2]])) writer?.endBlock();
    },
  };
}
