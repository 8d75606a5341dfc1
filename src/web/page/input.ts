import { type SpoolClient, SpoolRpcError } from "../../client/spool-client.js";

/** Bytes typed (or pasted) that may wait to be sent; what comes past it is dropped, saying so. */
const MAX_PENDING_BYTES = 64 * 1024;
/** Bytes per `stream/input` call: well under the server's limits.maxInputBytes (64 KiB by default). */
const PART_BYTES = 16 * 1024;
/** Sends of one piece of input before giving up on it (another client's input taking its seq each time). */
const MAX_TRIES = 5;

type Control = { kind: "input"; data: Uint8Array; seq: number | null; tries: number } | { kind: "resize"; cols: number; rows: number };

export interface InputEvents {
  /** A refusal or a failure, for the page to show; the input stays live. */
  error(text: string): void;
  /** Input is over: the command finished (STREAM_CLOSED) or its owner takes none (UNSUPPORTED). */
  closed(reason: string): void;
}

const encoder = new TextEncoder();

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * What is typed into a running producer's terminal, on its way to the command: `stream/input` and
 * `stream/resize`, one call at a time in the order they were made (keys typed while a call is out go
 * together in the next). Each input carries the seq it is stored under on channel 0, so one whose answer
 * a dropped connection lost is sent again with the same seq after the reconnect and is not typed twice.
 */
export class TerminalInput {
  readonly #rpc: () => SpoolClient | null;
  readonly #events: InputEvents;
  #queue: Control[] = [];
  #queuedBytes = 0;
  /** The control sent and not yet answered; kept across a dropped connection. */
  #inFlight: Control | null = null;
  /** Channel 0's last seq as far as this page knows; null until asked. */
  #last: number | null = null;
  #busy = false;
  #closed = false;
  #resizable = true;

  constructor(
    readonly run: string,
    readonly path: string,
    rpc: () => SpoolClient | null,
    events: InputEvents,
  ) {
    this.#rpc = rpc;
    this.#events = events;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Keys from the terminal (xterm.js `onData`: text, escape sequences, \r for Enter, \x03 for Ctrl+C). */
  type(text: string): void {
    if (this.#closed) return;
    let data = encoder.encode(text);
    const room = MAX_PENDING_BYTES - this.#queuedBytes;
    if (data.length > room) {
      this.#events.error(`${data.length - Math.max(0, room)} bytes typed were not sent: ${MAX_PENDING_BYTES / 1024} KiB already wait for the command`);
      if (room <= 0) return;
      data = data.subarray(0, room);
    }
    this.#queuedBytes += data.length;
    const tail = this.#queue.at(-1);
    if (tail?.kind === "input" && tail.data.length + data.length <= PART_BYTES) tail.data = join(tail.data, data);
    else
      for (let at = 0; at < data.length; at += PART_BYTES) this.#queue.push({ kind: "input", data: data.subarray(at, at + PART_BYTES), seq: null, tries: 0 });
    void this.#pump();
  }

  /** The terminal's size, when input opens and when it changes; only the newest waiting one is sent. */
  resize(cols: number, rows: number): void {
    if (this.#closed || !this.#resizable) return;
    this.#queue = this.#queue.filter((c) => c.kind !== "resize");
    this.#queue.push({ kind: "resize", cols, rows });
    void this.#pump();
  }

  /** The connection is back: what was on its way goes again (with its seq), then the rest. */
  resume(): void {
    void this.#pump();
  }

  /** The producer ended, or the page looks elsewhere: nothing more is sent. */
  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#inFlight = null;
  }

  async #pump(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (;;) {
        const rpc = this.#rpc();
        if (this.#closed || !rpc || rpc.closed) return;
        const control = this.#inFlight ?? this.#queue.shift();
        if (!control) return;
        if (!this.#inFlight && control.kind === "input") this.#queuedBytes -= control.data.length;
        this.#inFlight = control;
        try {
          await this.#send(rpc, control);
        } catch (error) {
          // A dropped connection keeps the control for resume(); anything else is the server's answer.
          if (rpc.closed) return;
          this.#refused(control, error);
        }
        if (this.#inFlight === control) this.#inFlight = null;
      }
    } finally {
      this.#busy = false;
    }
  }

  async #send(rpc: SpoolClient, control: Control): Promise<void> {
    if (control.kind === "resize") {
      await rpc.call("stream/resize", { run: this.run, path: this.path, cols: control.cols, rows: control.rows });
      return;
    }
    for (;;) {
      this.#last ??= await this.#lastSeq(rpc);
      control.seq ??= this.#last + 1;
      control.tries++;
      try {
        const sent = await rpc.call("stream/input", { run: this.run, path: this.path, data: toBase64(control.data), encoding: "base64", seq: control.seq });
        this.#last = Math.max(this.#last ?? 0, sent.seq);
        // Already stored on a first send: another client typed the same bytes under this seq; this input still goes.
        if (!sent.duplicate || control.tries > 1 || control.tries >= MAX_TRIES) return;
      } catch (error) {
        // Another client's input took this seq (CONFLICT), or this page's count is off (SEQ_GAP): ask again, send again.
        const taken = error instanceof SpoolRpcError && (error.errorCode === "CONFLICT" || error.errorCode === "SEQ_GAP");
        if (!taken || rpc.closed || control.tries >= MAX_TRIES) throw error;
        this.#last = null;
      }
      control.seq = null;
    }
  }

  /** Channel 0's last seq: what a subscription to it reports (nothing is replayed after the largest seq); 0 before any input. */
  async #lastSeq(rpc: SpoolClient): Promise<number> {
    try {
      const { subscription, channels } = await rpc.call(
        "stream/subscribe",
        { run: this.run, path: this.path, channel: 0, after: Number.MAX_SAFE_INTEGER },
        { timeoutMs: 0 },
      );
      void rpc.call("stream/unsubscribe", { subscription }).catch(() => {});
      return channels[0]?.lastSeq ?? 0;
    } catch (error) {
      if (error instanceof SpoolRpcError && error.errorCode === "NOT_FOUND" && !rpc.closed) return 0;
      throw error;
    }
  }

  #refused(control: Control, error: unknown): void {
    const code = error instanceof SpoolRpcError ? error.errorCode : undefined;
    const text = error instanceof Error ? error.message : String(error);
    if (code === "STREAM_CLOSED") {
      this.close();
      this.#events.closed(`input closed: ${text}`);
    } else if (code === "UNSUPPORTED" && control.kind === "input") {
      this.close();
      this.#events.closed(`the command takes no input: ${text}`);
    } else if (code === "UNSUPPORTED") {
      // Its owner cannot resize it: typing may still work, the size is not sent again.
      this.#resizable = false;
      this.#events.error(`Resize: ${text}`);
    } else {
      this.#events.error(`${control.kind === "input" ? "Input" : "Resize"}: ${text}${code ? ` (${code})` : ""}`);
    }
  }
}
