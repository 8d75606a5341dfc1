import { StringDecoder } from "node:string_decoder";
import { ScreenText } from "../protocol/screen-text.js";
import { inForeground } from "./foreground.js";

export { escapeFormat, ScreenText, type ScreenTextOptions } from "../protocol/screen-text.js";

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

/**
 * Written when `spool attach` starts on a terminal: the title (and icon name) pushed on the terminal's stack
 * (XTWINOPS 22), so the one the command sets is taken back by MODES_RESET's pop (23).
 */
export const ATTACH_START = "\u001b[22;0t";

/**
 * Written after TERMINAL_RESET when `spool attach` ends (detached, or the command over): every mode a command's
 * raw output may have left set in this terminal, back to its default.
 */
export const MODES_RESET = [
  "\u001b[?9l\u001b[?1000l\u001b[?1001l\u001b[?1002l\u001b[?1003l", // mouse reporting (X10, normal, highlight, button, any)
  "\u001b[?1005l\u001b[?1006l\u001b[?1015l\u001b[?1016l", // mouse encodings (UTF-8, SGR, urxvt, SGR pixels)
  "\u001b[?1004l", // focus events
  "\u001b[?2004l", // bracketed paste
  "\u001b[?1l", // cursor keys: normal (DECCKM)
  "\u001b>", // keypad: numeric (DECKPNM)
  "\u001b[?66l", // keypad: numeric (DECNKM)
  "\u001b[<99u", // the kitty keyboard's stack popped empty: its flags all off
  "\u001b[?2026l", // synchronized output ended
  "\u001b[4l", // insert mode off
  "\u001b[?5l", // reverse video off
  "\u001b[0 q", // the cursor's shape: the terminal's own
  "\u001b]104\u001b\\\u001b]110\u001b\\\u001b]111\u001b\\\u001b]112\u001b\\", // the palette, foreground, background and cursor colours reset
  "\u001b[23;0t", // the title (and icon name) popped: the one before ATTACH_START
].join("");

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
 * and this process the job in front (a background job leaves the screen of the one in front alone); with `modes`,
 * MODES_RESET too (`spool attach`, at its end).
 */
export function resetTerminal(stream: Sink = process.stdout, options: { modes?: boolean } = {}): void {
  if (stream.isTTY && inForeground()) stream.write(options.modes ? TERMINAL_RESET + MODES_RESET : TERMINAL_RESET);
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
