import { Terminal } from "@xterm/xterm";

/** Bytes handed to xterm.js and not yet parsed, above which nothing more is handed over this frame. */
const MAX_IN_TERMINAL = 4 * 1024 * 1024;
/** Bytes handed over in one animation frame at most. */
const MAX_PER_FRAME = 2 * 1024 * 1024;
/** Bytes received and not yet handed over, above which the page stops its subscription (it resumes from the last seq once caught up). */
const MAX_QUEUED = 16 * 1024 * 1024;

const THEME = {
  background: "#0b0e14",
  foreground: "#d6dbe4",
  cursor: "#0b0e14",
  selectionBackground: "#33415c",
};

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

/** The width of one character cell in the terminal font, measured once. */
function measureCell(font: string, size: number): { width: number; height: number } {
  const probe = document.createElement("span");
  probe.style.cssText = `position:absolute;visibility:hidden;white-space:pre;font-family:${font};font-size:${size}px;line-height:normal`;
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

/**
 * One data channel of a producer in an xterm.js terminal. Chunks are queued as they arrive and written
 * once per animation frame, so a producer writing megabytes a second costs the page one write a frame;
 * when the terminal cannot keep up the owner is told to stop the subscription and to resume it from
 * `lastSeq` once the backlog is drawn, so memory stays bounded and nothing is skipped.
 */
export class ChannelTerminal {
  readonly element: HTMLElement;
  readonly info: ChannelInfo;
  /** Last seq received (queued or written). */
  lastSeq = 0;
  /** Bytes received since the page opened it. */
  received = 0;
  #written = 0;
  #term: Terminal;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #inTerminal = 0;
  #frame = 0;
  #paused = false;
  #disposed = false;
  #resize: ResizeObserver;
  #onPause: (paused: boolean) => void;

  constructor(info: ChannelInfo, onPause: (paused: boolean) => void) {
    this.info = info;
    this.#onPause = onPause;
    this.element = document.createElement("div");
    this.element.className = "term";
    this.element.dataset.channel = String(info.channel);
    const fontFamily = "'DejaVu Sans Mono', 'Cascadia Mono', Menlo, Consolas, 'Liberation Mono', monospace";
    const fontSize = 13;
    this.#term = new Terminal({
      convertEol: true,
      disableStdin: true,
      cursorBlink: false,
      cursorStyle: "bar",
      cursorInactiveStyle: "none",
      scrollback: 10_000,
      fontFamily,
      fontSize,
      theme: THEME,
    });
    this.#term.open(this.element);
    const cell = measureCell(fontFamily, fontSize);
    this.#resize = new ResizeObserver(() => this.#fit(cell));
    this.#resize.observe(this.element);
  }

  /** A chunk from `stream/data` (base64); repeats of what it already has are ignored. */
  push(seq: number, base64: string): void {
    if (this.#disposed || seq <= this.lastSeq) return;
    const data = fromBase64(base64);
    this.lastSeq = seq;
    this.received += data.length;
    this.#queue.push(data);
    this.#queued += data.length;
    if (this.#queued > MAX_QUEUED && !this.#paused) {
      this.#paused = true;
      this.#onPause(true);
    }
    this.#schedule();
  }

  /** A line of the page's own (not the producer's): dimmed, on a line of its own. */
  note(text: string): void {
    this.#term.write(`\r\n\x1b[2m${text}\x1b[0m\r\n`);
  }

  get paused(): boolean {
    return this.#paused;
  }

  dispose(): void {
    this.#disposed = true;
    cancelAnimationFrame(this.#frame);
    this.#resize.disconnect();
    this.#term.dispose();
    this.#queue = [];
  }

  #schedule(): void {
    if (this.#frame === 0 && !this.#disposed) this.#frame = requestAnimationFrame(() => this.#flush());
  }

  #flush(): void {
    this.#frame = 0;
    if (this.#disposed || this.#queue.length === 0 || this.#inTerminal > MAX_IN_TERMINAL) return;
    let size = 0;
    let count = 0;
    while (count < this.#queue.length && size < MAX_PER_FRAME) size += this.#queue[count++]!.length;
    const parts = this.#queue.splice(0, count);
    const batch = parts.length === 1 ? parts[0]! : new Uint8Array(size);
    if (parts.length > 1) {
      let at = 0;
      for (const part of parts) {
        batch.set(part, at);
        at += part.length;
      }
    }
    this.#queued -= size;
    this.#inTerminal += size;
    this.#term.write(batch, () => {
      this.#inTerminal -= size;
      this.#written += size;
      this.element.dataset.written = String(this.#written);
      if (this.#paused && this.#queued === 0 && this.#inTerminal === 0) {
        this.#paused = false;
        this.#onPause(false);
      }
      if (this.#queue.length > 0) this.#schedule();
    });
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
  }
}
