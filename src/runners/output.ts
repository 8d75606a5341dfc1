import { Readable } from "node:stream";

/**
 * A process's output as its consumer reads it: the source pushes each chunk it reads with `offer`, and holds off
 * (pauses) when that says so, until `wanted` runs — when the consumer wants more, or once it destroyed the output
 * (it takes nothing more: what the source says then is dropped, so the process can write to its end). A plain
 * Readable: no PassThrough's write path a chunk (a runner reads one chunk a line of a line-buffered command).
 */
export class HeldOutput extends Readable {
  #held = false;
  readonly #wanted: () => void;

  /** `wanted`: the source may go on (resume it). */
  constructor(wanted: () => void) {
    super({ highWaterMark: 64 * 1024 });
    this.#wanted = wanted;
  }

  /** Whether the source holds off: the consumer is behind. */
  get held(): boolean {
    return this.#held;
  }

  /** Passes a chunk on; false when the source should hold off until `wanted`. */
  offer(chunk: Buffer): boolean {
    if (this.destroyed || this.push(chunk)) return true;
    this.#held = true;
    return false;
  }

  override _read(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#wanted();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this._read();
    callback(error);
  }
}

/**
 * Passes a process's output stream on, and can stop waiting for it.
 *
 * A background grandchild can keep a pipe open long after the command itself
 * exited, so "the stream ended" may never come. After the process has ended,
 * `settle()` waits until the source ends, or until it has been quiet for
 * `quietMs` while it was being read; then it ends the output cleanly and lets
 * go of the source.
 *
 * Quiet is counted only while the source is read: not while a slow consumer
 * holds it back (the process's last output then waits in the pipe, unread),
 * and not across an event loop that has not polled the pipe since (timers run
 * before the loop reads pipes, so a busy loop would otherwise take its own
 * delay for silence and cut output the process already wrote).
 *
 * Each chunk read goes straight into `output` (a HeldOutput), and the source
 * is paused while `output` holds `highWaterMark` bytes its consumer has not
 * taken (bench/history/README.md, issue 24 session 6: a PassThrough cost more per
 * chunk than the rest of the read).
 */
export class OutputPipe {
  readonly output: HeldOutput;
  #lastData = Date.now();
  /** `output` has been ended (the source ended, or settle() let it go). */
  #ended = false;
  readonly #ends: Promise<void>;

  constructor(private readonly source: Readable) {
    // The consumer wants more (or destroyed the output): read the source again, and count quiet from now.
    this.output = new HeldOutput(() => {
      this.#lastData = Date.now();
      this.source.resume();
    });
    source.on("data", this.#onData);
    this.#ends = new Promise((resolve) => {
      source.once("end", () => {
        this.#end();
        resolve();
      });
      source.once("close", () => resolve());
      source.once("error", (error) => {
        this.#ended = true;
        this.output.destroy(error);
        resolve();
      });
    });
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#lastData = Date.now();
    if (!this.output.offer(chunk)) this.source.pause();
  };

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.output.push(null);
  }

  /** Output the source holds, or could hold, that is not passed on yet: the source is not being read meanwhile. */
  #heldBack(): boolean {
    return this.output.held || this.source.readableLength > 0 || this.source.readableFlowing === false;
  }

  /** Resolves when the output has ended: at the source's end, or after the quiet period once the process is gone. */
  async settle(quietMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let immediate: NodeJS.Immediate | undefined;
    const quiet = new Promise<void>((resolve) => {
      const later = () => {
        timer = setTimeout(check, Math.max(10, quietMs / 2));
      };
      const check = () => {
        // Held back: the quiet period starts again once the source is read.
        if (this.#heldBack()) this.#lastData = Date.now();
        if (Date.now() - this.#lastData < quietMs) return later();
        // The loop may not have read the pipe since the last data (timers come before its poll): look again once
        // it has (an immediate runs after the poll), and call it quiet only if nothing came meanwhile.
        const seen = this.#lastData;
        immediate = setImmediate(() => {
          if (this.#lastData === seen && !this.#heldBack()) resolve();
          else later();
        });
      };
      timer = setTimeout(check, quietMs);
    });
    await Promise.race([this.#ends, quiet]);
    clearTimeout(timer);
    clearImmediate(immediate);
    if (!this.#ended && !this.output.destroyed) {
      this.source.off("data", this.#onData);
      this.source.destroy();
      this.#end();
    }
  }
}
