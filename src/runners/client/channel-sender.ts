import { isUtf8 } from "node:buffer";
import { ConnectionClosedError, SpoolRpcError } from "../../client/spool-client.js";

/** The connection a sender streams through: null while the runner is reconnecting. */
export interface StreamLink {
  current(): { request<T = unknown>(method: string, params: object): Promise<T>; readonly bytes?: boolean } | null;
  /** Takes one of the connection's slots for an unacknowledged call, if one is free. */
  tryAcquire(): boolean;
  release(): void;
  /** Calls `granted` once a slot has been handed over to the caller (who must use or release it). */
  whenFree(granted: () => void): void;
}

/**
 * The connection-wide budget of unacknowledged calls: the server refuses
 * more than `limits.maxUnackedChunks` per connection, and one runner streams
 * many channels over one connection.
 */
export class Slots {
  #used = 0;
  #waiting: (() => void)[] = [];

  constructor(public capacity: number) {}

  tryAcquire(): boolean {
    if (this.#used >= this.capacity || this.#waiting.length > 0) return false;
    this.#used++;
    return true;
  }

  /** Waits for a slot; slots go to waiters first come, first served. */
  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Gives the slot straight to the longest waiter, if any (it then owns it and must release it). */
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#used = Math.max(0, this.#used - 1);
  }

  /** Calls `granted` once a slot is handed to it; the callee owns that slot. */
  whenFree(granted: () => void): void {
    this.#waiting.push(granted);
  }
}

export interface ChannelSenderOptions {
  /** Chunks sent and not yet acknowledged on this channel, at most. */
  window: number;
  /** Largest chunk, in bytes. */
  maxChunkBytes: number;
  /** Bytes buffered before `push` waits (backpressure towards the process). */
  highWaterBytes: number;
  /** Called once when the server refuses the channel for good (finished, gone). */
  onRefused(error: SpoolRpcError): void;
  /** Tries at a chunk the server refused with an error it may get over, before giving the channel up (default 8). */
  retryAttempts?: number;
  /** The wait before retry number n (from 1), in ms (default 100·2ⁿ⁻¹, at most 3.2 s). */
  retryDelay?: (attempt: number) => number;
}

/** An error the server may get over (its store busy or full, an internal error): the same seq is sent again. */
export function retriableStreamError(error: unknown): boolean {
  return error instanceof SpoolRpcError && (error.code === -32603 || (error.data as { retriable?: unknown } | undefined)?.retriable === true);
}

/** Length of an incomplete UTF-8 sequence at the end of `data`'s first `end` bytes (0 when they end on a boundary). */
export function incompleteUtf8Tail(data: Uint8Array, end = data.length): number {
  for (let back = 1; back <= Math.min(3, end); back++) {
    const byte = data[end - back]!;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back ? back : 0;
  }
  return 0;
}

/** `stream` params for one chunk: the Buffer itself over a link that takes bytes (a value, or a binary frame), else utf8 text or base64. */
function streamParams(target: { run: string; path: string; channel: number }, seq: number, chunk: Buffer, bytes: boolean): object {
  const { run, path, channel } = target;
  if (bytes) return { run, path, channel, seq, chunk };
  return isUtf8(chunk)
    ? { run, path, channel, seq, chunk: chunk.toString("utf8") }
    : { run, path, channel, seq, chunk: chunk.toString("base64"), encoding: "base64" };
}

/**
 * Streams one data channel: cuts buffered output into chunks, numbers them
 * with `seq`, keeps at most `window` unacknowledged (and never more than the
 * connection's free slots), and after a reconnect resends whatever the server
 * had not stored, in order. Chunks are never split inside a character.
 * Over a link that takes bytes (the embedded runner's, in process; a
 * WebSocket whose server advertised binary frames for `stream`) a chunk goes
 * as the Buffer it is; over JSON text, text goes as utf8 and anything else as
 * base64.
 */
export class ChannelSender {
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  #ended = false;
  #refused = false;
  #nextSeq = 1;
  readonly #unacked = new Map<number, Buffer>();
  /** Unacknowledged chunks to send again, in seq order (after a reconnect). */
  #resend: number[] = [];
  #inFlight = 0;
  #generation = 0;
  #waitingForSlot = false;
  /** A slot handed over by `whenFree`, not used yet. */
  #granted = false;
  #waiters: (() => void)[] = [];
  /** Rounds of retries since the last acknowledgement. */
  #retries = 0;
  /** Set while waiting to send refused chunks again: nothing is sent meanwhile. */
  #retryTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly link: StreamLink,
    private readonly target: { run: string; path: string; channel: number },
    private readonly options: ChannelSenderOptions,
  ) {}

  get refused(): boolean {
    return this.#refused;
  }

  /**
   * Queues output. Returns undefined while there is room for more, else a promise that resolves once there is
   * (the process's pipe waits meanwhile): a chunk read with room to spare costs no promise.
   */
  push(data: Buffer): Promise<void> | undefined {
    if (this.#refused || data.length === 0) return undefined;
    this.#buffered.push(data);
    this.#bufferedBytes += data.length;
    this.#pump();
    return !this.#refused && this.#bufferedBytes >= this.options.highWaterBytes ? this.#room() : undefined;
  }

  async #room(): Promise<void> {
    while (!this.#refused && this.#bufferedBytes >= this.options.highWaterBytes) await this.#changed();
  }

  /** No more output: resolves once everything is acknowledged (or the server refused the channel). */
  async end(): Promise<void> {
    this.#ended = true;
    this.#pump();
    while (!this.#refused && (this.#bufferedBytes > 0 || this.#unacked.size > 0)) await this.#changed();
  }

  /** After a reconnect: forget what the server already holds (`lastSeq`), resend the rest in order. */
  resume(lastSeq: number): void {
    this.#generation++;
    this.#clearRetry();
    // Calls of the old connection never answer now; their slots are free again.
    for (let i = 0; i < this.#inFlight; i++) this.link.release();
    this.#inFlight = 0;
    for (const seq of [...this.#unacked.keys()]) if (seq <= lastSeq) this.#unacked.delete(seq);
    this.#resend = [...this.#unacked.keys()].sort((a, b) => a - b);
    this.#pump();
    this.#wake();
  }

  /** Stops sending for good (the producer was cancelled or lost). */
  refuse(): void {
    this.#refused = true;
    this.#clearRetry();
    this.#buffered = [];
    this.#bufferedBytes = 0;
    this.#unacked.clear();
    this.#resend = [];
    this.#wake();
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    // Called at every pump: nobody waiting is the rule, and costs no new array.
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #clearRetry(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  /**
   * The server refused `seq` with an error it may get over, or with SEQ_GAP because an earlier seq being retried
   * is not stored yet: send it again, in order, after a pause that grows with each round. False when the
   * retries are used up.
   */
  #retryLater(seq: number, error: SpoolRpcError): boolean {
    // Chunks sent after a refused one meet a gap where it should be: they wait for it and go again after it. The
    // gap is one this sender can fill when the seq the server expects is an earlier chunk it still holds (whatever
    // was acknowledged meanwhile: an earlier chunk's acknowledgement may come after the refusal of a later one).
    const expected = (error.data as { expected?: unknown } | undefined)?.expected;
    const gapBehindRetry = error.errorCode === "SEQ_GAP" && typeof expected === "number" && expected < seq && this.#unacked.has(expected);
    if (!retriableStreamError(error) && !gapBehindRetry) return false;
    if (!this.#unacked.has(seq)) return true;
    const at = this.#resend.findIndex((r) => r > seq);
    if (at === -1) this.#resend.push(seq);
    else if (this.#resend[at - 1] !== seq) this.#resend.splice(at, 0, seq);
    if (this.#retryTimer) return true;
    if (++this.#retries > (this.options.retryAttempts ?? 8)) return false;
    const delay = this.options.retryDelay?.(this.#retries) ?? Math.min(3200, 100 * 2 ** (this.#retries - 1));
    const generation = this.#generation;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (generation === this.#generation) this.#pump();
    }, delay);
    return true;
  }

  #pump(): void {
    if (this.#refused || !this.link.current() || this.#retryTimer) return;
    while (this.#inFlight < this.options.window && (this.#resend.length > 0 || this.#bufferedBytes > 0)) {
      if (this.#granted) this.#granted = false;
      else if (!this.link.tryAcquire()) {
        if (!this.#waitingForSlot) {
          this.#waitingForSlot = true;
          this.link.whenFree(() => {
            this.#waitingForSlot = false;
            this.#granted = true;
            this.#pump();
            // Nothing to send after all: pass the slot on.
            if (this.#granted) {
              this.#granted = false;
              this.link.release();
            }
          });
        }
        break;
      }
      let seq: number;
      if (this.#resend.length > 0) {
        seq = this.#resend.shift()!;
        if (!this.#unacked.has(seq)) {
          this.link.release();
          continue;
        }
      } else {
        const chunk = this.#cut();
        if (!chunk) {
          this.link.release();
          break;
        }
        seq = this.#nextSeq++;
        this.#unacked.set(seq, chunk);
      }
      this.#send(seq);
    }
    this.#wake();
  }

  /**
   * Takes up to maxChunkBytes from the buffer; a character cut in two waits for its other bytes unless the output ended.
   * A chunk within the first read is a view of it; one made of several reads is a copy of its own bytes alone, not
   * of everything buffered: with the window full the buffer holds up to highWaterBytes of short pipe reads, and
   * joining all of them for each chunk copied (and allocated) that much for every maxChunkBytes sent, and kept
   * the whole copy alive while the chunk was unacknowledged.
   */
  #cut(): Buffer | null {
    const pieces = this.#buffered;
    const first = pieces[0]!;
    let size = Math.min(this.#bufferedBytes, this.options.maxChunkBytes);
    const last = this.#ended && size === this.#bufferedBytes;
    let chunk: Buffer;
    if (first.length >= size) {
      if (!last) size -= incompleteUtf8Tail(first, size);
      if (size <= 0) return null;
      chunk = size === first.length ? first : first.subarray(0, size);
    } else {
      // A buffer of its own, never a slice of Node's shared pool (8 KiB on Node 20 and 22, 64 KiB on 24): a chunk kept
      // for a retry holds its own bytes alone.
      const joined = Buffer.allocUnsafeSlow(size);
      let at = 0;
      for (let i = 0; at < size; i++) at += pieces[i]!.copy(joined, at, 0, Math.min(pieces[i]!.length, size - at));
      if (!last) size -= incompleteUtf8Tail(joined, size);
      if (size <= 0) return null;
      chunk = size === joined.length ? joined : joined.subarray(0, size);
    }
    this.#take(size);
    return chunk;
  }

  /** Drops the first `size` bytes of the buffer (whole reads, then the front of a read). */
  #take(size: number): void {
    this.#bufferedBytes -= size;
    const pieces = this.#buffered;
    let whole = 0;
    while (whole < pieces.length && pieces[whole]!.length <= size) size -= pieces[whole++]!.length;
    if (whole === pieces.length) pieces.length = 0;
    else if (whole > 0) pieces.splice(0, whole);
    if (size > 0) pieces[0] = pieces[0]!.subarray(size);
  }

  /** Sends one chunk; the caller holds a slot, which this gives back when the call settles. */
  #send(seq: number): void {
    const client = this.link.current();
    const payload = this.#unacked.get(seq);
    if (!client || !payload) {
      this.link.release();
      return;
    }
    const generation = this.#generation;
    this.#inFlight++;
    client.request("stream", streamParams(this.target, seq, payload, client.bytes === true)).then(
      () => {
        if (generation !== this.#generation) return;
        this.#settled();
        this.#unacked.delete(seq);
        this.#retries = 0;
        this.#pump();
      },
      (error: unknown) => {
        if (generation !== this.#generation) return;
        this.#settled();
        // The connection dropped: the chunk stays unacknowledged until `resume` after the reconnect.
        if (error instanceof ConnectionClosedError) return;
        // Busy, full or an internal error: the same seq goes again (a repeat the server did store is acknowledged).
        if (error instanceof SpoolRpcError && !this.#refused && this.#retryLater(seq, error)) return;
        // STREAM_CLOSED, NOT_FOUND, SEQ_GAP…: the server will not take this channel's output any more.
        if (!this.#refused) {
          this.refuse();
          this.options.onRefused(error instanceof SpoolRpcError ? error : new SpoolRpcError(String(error), -32603, undefined));
        }
      },
    );
  }

  #settled(): void {
    this.#inFlight--;
    this.link.release();
  }
}
