import { type IDisposable, Terminal } from "@xterm/xterm";
import { ScreenText } from "../../protocol/screen-text.js";
import { bytes } from "./format.js";

/**
 * Bytes handed to xterm.js per animation frame: adapted to how long frames take (halved when frames come
 * late, grown while they come on time), so drawing leaves the page time to read the WebSocket. A page
 * that cannot draw everything then sees its own queue grow and skips, instead of the backlog hiding in
 * the network where nothing can tell how far behind it is.
 */
const MIN_PER_FRAME = 16 * 1024;
const MAX_PER_FRAME = 1024 * 1024;
/** Frames further apart than this are late. */
const LATE_FRAME_MS = 40;
/** xterm.js parses one write without yielding: pieces this big keep each of its slices short. */
const PIECE_BYTES = 8 * 1024;
/** Live: a queue past this many bytes is cut to its newest KEEP_BYTES, so what is shown stays current. */
const SKIP_AT = 4 * 1024 * 1024;
const KEEP_BYTES = 512 * 1024;
/** Whole output: a queue past this many bytes stops the subscription until it is drawn (then it resumes after the last seq). */
const MAX_QUEUED = 8 * 1024 * 1024;

const THEME = {
  background: "#0b0e14",
  foreground: "#d6dbe4",
  cursor: "#0b0e14",
  selectionBackground: "#33415c",
};

const FONT = "'DejaVu Sans Mono', 'Cascadia Mono', Menlo, Consolas, 'Liberation Mono', monospace";
const FONT_SIZE = 13;

type Decoder = (text: string) => Uint8Array;
const fromBase64: Decoder =
  typeof (Uint8Array as unknown as { fromBase64?: Decoder }).fromBase64 === "function"
    ? (Uint8Array as unknown as { fromBase64: Decoder }).fromBase64
    : (text) => {
        const binary = atob(text);
        const out = new Uint8Array(binary.length);
        for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
        return out;
      };

/** The width and height of one character cell in the terminal font. */
function measureCell(): { width: number; height: number } {
  const probe = document.createElement("span");
  probe.style.cssText = `position:absolute;visibility:hidden;white-space:pre;font-family:${FONT};font-size:${FONT_SIZE}px;line-height:normal`;
  probe.textContent = "W".repeat(64);
  document.body.append(probe);
  const rect = probe.getBoundingClientRect();
  probe.remove();
  return { width: rect.width / 64, height: rect.height };
}

export interface ChannelInfo {
  channel: number;
  name: string;
}

/** How a terminal keeps up: `live` skips what it cannot draw in time (saying so); `whole` draws every byte, however long it takes. */
export type TerminalMode = "live" | "whole";

/** Where what is typed into an interactive terminal goes. */
export interface TerminalKeys {
  /** Keys as xterm.js turns them into bytes for a terminal (\r for Enter, \x03 for Ctrl+C, escape sequences). */
  data(text: string): void;
  /** The terminal's size in cells: once it is laid out, and whenever it changes. */
  resize(cols: number, rows: number): void;
}

export interface TerminalEvents {
  /** Whole mode: stop (true) or resume (false) the subscription, after `lastSeq`. */
  pause(paused: boolean): void;
  /** Live mode skipped bytes; the owner shows it. */
  skipped(): void;
}

/**
 * What of a command's output xterm.js is given: text, drawn as `spool tail` draws it on a terminal (through the same
 * ScreenText, src/protocol/screen-text.ts): colours (SGR), newline, carriage return, tab and backspace, and the edits
 * that stay on the cursor's line (erase in line, cursor left and right, to a column, insert and delete characters: a
 * shell's line editor, a progress line). Every other control is shown as text in caret notation (`^[[2A`, `^[]8;;…`),
 * format controls as escapes (`\u{202e}`): nothing a command prints can move the cursor to an earlier line and draw
 * over it, make a link, set a title or a mode, reorder text with bidi controls, or ask the terminal a question whose
 * answer would be sent to the command as typing. A full-screen program (an editor, `top`) is driven with `spool attach`.
 */
const screenText = () => new ScreenText({ gutter: null, lineEdits: true });

/**
 * One data channel of a producer in an xterm.js terminal. Chunks are queued as they arrive and handed
 * to the terminal once per animation frame, in pieces small enough that parsing them never holds the
 * page for long. A producer can write faster than a browser can draw: live, the terminal then drops
 * the oldest queued output and notes how much (the output is all stored; `whole` mode draws every byte,
 * pausing the subscription while it catches up), so memory stays bounded either way.
 */
export class ChannelTerminal {
  readonly element: HTMLElement;
  readonly info: ChannelInfo;
  readonly mode: TerminalMode;
  /** Last seq received (queued or written). */
  lastSeq = 0;
  /** Bytes received since the terminal opened. */
  received = 0;
  /** Bytes live mode dropped to keep up. */
  skipped = 0;
  /** A finished channel opened at its end (see `tail`): bytes before the part drawn, never sent to this terminal. */
  notDrawn = 0;
  /** What bytes jumped over count as: skipped to keep up (live, behind), or the head of a finished channel not drawn. */
  #jumpIs: "skipped" | "head" = "skipped";
  #written = 0;
  /** Newlines of the channel's bytes the terminal has parsed (where its line numbers are: see `reveal`). */
  #newlines = 0;
  /** The page wrote a note of its own into the terminal. */
  #noted = false;
  /** After a jump: the seq jumped to the channel's end at, its size then, and the bytes received before the jump. */
  #gap: { upTo: number; bytesAt: number } | null = null;
  /** Bytes of the channel never received (jumped over): with `received`, every byte up to `lastSeq`. */
  #jumped = 0;
  #term: Terminal;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #inTerminal = 0;
  #frame = 0;
  #perFrame = 128 * 1024;
  #lastFrame = 0;
  #paused = false;
  #disposed = false;
  #resize: ResizeObserver;
  #events: TerminalEvents;
  #keys: TerminalKeys | null = null;
  #keyListeners: IDisposable[] = [];
  /** The size last given to `keys.resize`, and whether the terminal has been laid out yet. */
  #sizeSent = "";
  #fitted = false;
  /** Channel 0 holds what was typed to the command: it is drawn as the lines typed (see #asTyped). */
  readonly #typed: boolean;
  /** The last byte drawn of typed input was a `\r`: a `\n` right after it ends no second line. */
  #afterCR = false;
  /** The channel's bytes as text (a character split between chunks kept whole), and that text made safe to draw. */
  #decoder = new TextDecoder("utf-8");
  #text = screenText();

  constructor(info: ChannelInfo, mode: TerminalMode, events: TerminalEvents) {
    this.info = info;
    this.mode = mode;
    this.#events = events;
    this.element = document.createElement("div");
    this.element.className = "term";
    this.element.dataset.channel = String(info.channel);
    this.#typed = info.channel === 0;
    this.#term = new Terminal({
      convertEol: true,
      disableStdin: true,
      cursorBlink: false,
      cursorStyle: "bar",
      cursorInactiveStyle: "none",
      scrollback: 10_000,
      fontFamily: FONT,
      fontSize: FONT_SIZE,
      theme: THEME,
      // No link is ever followed from output: OSC 8 never reaches the terminal (see screenText), and were one to, a
      // click on it does nothing.
      linkHandler: { activate: () => {} },
    });
    this.#term.parser.registerOscHandler(8, () => true);
    this.#term.open(this.element);
    const cell = measureCell();
    this.#resize = new ResizeObserver(() => this.#fit(cell));
    this.#resize.observe(this.element);
  }

  /** A chunk from `stream/data` (base64); repeats of what it already has are ignored. */
  push(seq: number, base64: string): void {
    if (this.#disposed || seq <= this.lastSeq) return;
    const data = fromBase64(base64);
    this.lastSeq = seq;
    this.received += data.length;
    this.element.dataset.received = String(this.received);
    if (this.#gap && seq >= this.#gap.upTo) {
      // Everything up to the jump's end has come, but for what was jumped over: that is what was skipped.
      this.#countJumped(this.#gap.bytesAt - (this.received - (seq > this.#gap.upTo ? data.length : 0)));
      this.#gap = null;
    }
    this.#queue.push(data);
    this.#queued += data.length;
    if (this.mode === "live" && this.#queued > SKIP_AT) this.#skip();
    if (this.mode === "whole" && this.#queued > MAX_QUEUED && !this.#paused) {
      this.#paused = true;
      this.#events.pause(true);
    }
    this.#schedule();
  }

  /**
   * Scrolls to the channel's line `n` (1-based, as entry/search numbers lines) and selects it, when the terminal
   * drew the channel from its first byte, skipped nothing and still holds that line in its scrollback. A line is a
   * row that is not a wrapped part of the row above; the rows the scrollback let go are counted from the newlines
   * parsed. False when it cannot.
   */
  reveal(n: number): boolean {
    if (this.notDrawn > 0 || this.skipped > 0 || this.#jumped > 0 || this.#typed || this.#noted) return false;
    const buffer = this.#term.buffer.active;
    const cursorRow = buffer.baseY + buffer.cursorY;
    let upToCursor = 0;
    for (let row = 0; row <= cursorRow; row++) if (!buffer.getLine(row)?.isWrapped) upToCursor++;
    // The line the buffer's first row is: the line the cursor is on, less the lines above it still held.
    const first = this.#newlines + 1 - upToCursor + 1;
    if (n < first) return false;
    let line = first - 1;
    for (let row = 0; row < buffer.length; row++) {
      if (buffer.getLine(row)?.isWrapped) continue;
      line++;
      if (line === n) {
        this.#term.scrollToLine(row);
        this.#term.selectLines(row, row);
        return true;
      }
    }
    return false;
  }

  /** A line of the page's own (not the producer's): dimmed, on a line of its own. */
  note(text: string): void {
    // Its lines are the page's, not the channel's: line numbers no longer map onto rows (see `reveal`).
    this.#noted = true;
    this.#term.write(`\x1b[0m\r\n\x1b[2m${text}\x1b[0m\r\n`);
  }

  get paused(): boolean {
    return this.#paused;
  }

  get interactive(): boolean {
    return this.#keys !== null;
  }

  /** Takes keyboard input (a producer with a terminal of its own, still running): keys and size go to `keys`. */
  takeInput(keys: TerminalKeys): void {
    this.releaseInput();
    this.#keys = keys;
    this.#term.options.disableStdin = false;
    this.#term.options.cursorInactiveStyle = "outline";
    this.#term.options.theme = { ...THEME, cursor: THEME.foreground };
    this.#keyListeners = [this.#term.onData((text) => this.#keys?.data(text))];
    this.element.dataset.input = "live";
    this.#sizeSent = "";
    if (this.#fitted) this.#sendSize();
  }

  focus(): void {
    this.#term.focus();
  }

  /** Back to read-only: nothing typed is sent any more. */
  releaseInput(): void {
    if (!this.#keys) return;
    this.#keys = null;
    for (const listener of this.#keyListeners.splice(0)) listener.dispose();
    this.#term.options.disableStdin = true;
    this.#term.options.cursorInactiveStyle = "none";
    this.#term.options.theme = THEME;
    delete this.element.dataset.input;
  }

  dispose(): void {
    this.releaseInput();
    this.#disposed = true;
    cancelAnimationFrame(this.#frame);
    this.#resize.disconnect();
    this.#term.dispose();
    this.#queue = [];
  }

  /**
   * Live, and too far behind to catch up through the stream: goes on from chunk `from` (a few chunks before the
   * channel's end, `upTo`, when it held `bytesAt` bytes); what lies between is counted as skipped once the
   * chunks up to `upTo` have come.
   */
  jump(from: number, upTo: number, bytesAt: number): void {
    if (this.#disposed || from <= this.lastSeq) return;
    this.lastSeq = from;
    this.#gap = { upTo, bytesAt };
    if (from >= upTo) {
      this.#countJumped(bytesAt - this.received);
      this.#gap = null;
    }
    // What waits to be drawn is older still: it goes too, so the next thing drawn is the end.
    this.#countSkipped(this.#queued);
    this.#queue = [];
    this.#queued = 0;
    this.#restartText();
    this.#term.write('\x1b[0m\r\n\x1b[2m[… skipped to keep up with the command; the output is stored whole: "whole output" shows every byte …]\x1b[0m\r\n');
  }

  /**
   * A finished channel, too big to be worth drawing from its first byte live (the terminal keeps its last lines
   * only): goes on from chunk `from`, `upTo` being its last (when it held `bytesAt` bytes). What comes before is
   * counted in `notDrawn` once the rest has come, and the terminal says how to see it all.
   */
  tail(from: number, upTo: number, bytesAt: number): void {
    if (this.#disposed || from <= this.lastSeq) return;
    this.#jumpIs = "head";
    this.lastSeq = from;
    this.#gap = { upTo, bytesAt };
    this.#term.write('\x1b[2m[… this finished output is shown from near its end; "whole output" draws every byte from the start …]\x1b[0m\r\n');
  }

  /** `beforeJumps` bytes up to the jump's end were neither received nor jumped over before: the new gap. */
  #countJumped(beforeJumps: number): void {
    const n = beforeJumps - this.#jumped;
    if (n <= 0) return;
    this.#jumped += n;
    if (this.#jumpIs === "head") {
      this.#jumpIs = "skipped";
      this.notDrawn += n;
      this.element.dataset.notDrawn = String(this.notDrawn);
      this.#events.skipped();
      return;
    }
    this.#countSkipped(n);
  }

  #countSkipped(n: number): void {
    if (n <= 0) return;
    this.skipped += n;
    this.element.dataset.skipped = String(this.skipped);
    this.#events.skipped();
  }

  /** Drops the oldest queued output, keeping about KEEP_BYTES from the start of a line. */
  #skip(): void {
    const all = this.#concat(this.#queue, this.#queued);
    let from = all.length - KEEP_BYTES;
    const newline = all.indexOf(0x0a, from);
    if (newline !== -1 && newline < all.length - 1) from = newline + 1;
    this.skipped += from;
    this.#queue = [all.subarray(from)];
    this.#queued = all.length - from;
    this.#restartText();
    this.element.dataset.skipped = String(this.skipped);
    this.#term.write(`\x1b[0m\r\n\x1b[2m[… ${bytes(from)} skipped to keep up; the output is stored whole: "whole output" shows every byte …]\x1b[0m\r\n`);
    this.#events.skipped();
  }

  /** Bytes were jumped over: a sequence or a character cut by the jump is forgotten, the colours it set turned off. */
  #restartText(): void {
    this.#decoder = new TextDecoder("utf-8");
    this.#text = screenText();
    this.#term.write("\x1b[0m");
  }

  #concat(parts: Uint8Array[], size: number): Uint8Array {
    if (parts.length === 1) return parts[0]!;
    const out = new Uint8Array(size);
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  #schedule(): void {
    if (this.#frame === 0 && !this.#disposed) this.#frame = requestAnimationFrame(() => this.#flush());
  }

  /** Once a frame: hands the terminal what it has room for, in pieces. */
  #flush(): void {
    this.#frame = 0;
    if (this.#disposed) return;
    const now = performance.now();
    // While there is output to draw, frames coming late (the page is busy) halve what is drawn per frame, frames on time let it grow.
    // Whole output hands the most each frame, late or not: xterm.js parses a write in short slices of its own, so the
    // page stays responsive, and fuller frames draw about three times the bytes per CPU second (a 100 MiB channel).
    if (this.mode === "whole") this.#perFrame = MAX_PER_FRAME;
    else if (this.#lastFrame > 0) {
      this.#perFrame = now - this.#lastFrame > LATE_FRAME_MS ? Math.max(MIN_PER_FRAME, this.#perFrame / 2) : Math.min(MAX_PER_FRAME, this.#perFrame * 1.25);
    }
    this.#lastFrame = this.#queue.length > 0 ? now : 0;
    while (this.#queue.length > 0 && this.#inTerminal < this.#perFrame) {
      // Small chunks are joined into one piece, big ones cut: each write is at most PIECE_BYTES.
      let size = 0;
      let count = 0;
      while (count < this.#queue.length && size + this.#queue[count]!.length <= PIECE_BYTES) size += this.#queue[count++]!.length;
      let piece: Uint8Array;
      if (count === 0) {
        const first = this.#queue[0]!;
        piece = first.subarray(0, PIECE_BYTES);
        this.#queue[0] = first.subarray(PIECE_BYTES);
      } else {
        piece = this.#concat(this.#queue.splice(0, count), size);
      }
      this.#queued -= piece.length;
      this.#inTerminal += piece.length;
      const newlines = countNewlines(piece);
      const text = this.#text.push(this.#decoder.decode(this.#typed ? this.#asTyped(piece) : piece, { stream: true }));
      this.#term.write(text, () => {
        this.#newlines += newlines;
        this.#parsed(piece.length);
      });
    }
  }

  /**
   * Typed input as the lines typed: Enter on a terminal sends `\r`, which a terminal would draw as a
   * return over the same line (each line typed over the one before); here `\r`, `\r\n` and `\n` each end
   * a line, and a backspace (DEL or ^H) erases the character before it, as in the model's view of stdin.
   */
  #asTyped(piece: Uint8Array): Uint8Array {
    const out = new Uint8Array(piece.length * 4);
    let n = 0;
    for (const byte of piece) {
      if (byte === 0x0a && this.#afterCR) {
        this.#afterCR = false;
        continue;
      }
      this.#afterCR = byte === 0x0d;
      if (byte === 0x7f || byte === 0x08) {
        // A step back, then ESC [ P: the character there is deleted.
        out.set([0x08, 0x1b, 0x5b, 0x50], n);
        n += 4;
        continue;
      }
      out[n++] = byte;
      if (byte === 0x0d) out[n++] = 0x0a;
    }
    return out.subarray(0, n);
  }

  #parsed(bytes: number): void {
    this.#inTerminal -= bytes;
    this.#written += bytes;
    this.element.dataset.written = String(this.#written);
    if (this.#paused && this.#queued < MAX_QUEUED / 4) {
      this.#paused = false;
      this.#events.pause(false);
    }
    if (this.#queue.length > 0) this.#schedule();
  }

  #fit(cell: { width: number; height: number }): void {
    if (this.#disposed) return;
    const box = this.element.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) return;
    // The rows xterm.js drew tell their real height; the measured font is the fallback.
    const rowHeight = this.element.querySelector(".xterm-rows > div")?.getBoundingClientRect().height || cell.height;
    const cols = Math.max(20, Math.floor((box.width - 20) / cell.width));
    const rows = Math.max(3, Math.floor((box.height - 4) / rowHeight));
    if (cols !== this.#term.cols || rows !== this.#term.rows) this.#term.resize(cols, rows);
    this.#fitted = true;
    this.element.dataset.size = `${cols}x${rows}`;
    if (this.#keys) this.#sendSize();
  }

  #sendSize(): void {
    const size = `${this.#term.cols}x${this.#term.rows}`;
    if (size === this.#sizeSent) return;
    this.#sizeSent = size;
    this.#keys?.resize(this.#term.cols, this.#term.rows);
  }
}

function countNewlines(bytes: Uint8Array): number {
  let n = 0;
  for (let at = bytes.indexOf(0x0a); at !== -1; at = bytes.indexOf(0x0a, at + 1)) n++;
  return n;
}
