import { PassThrough, type Readable } from "node:stream";

/**
 * Passes a process's output stream through, and can stop waiting for it.
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
 */
export class OutputPipe {
  readonly output = new PassThrough({ highWaterMark: 64 * 1024 });
  #lastData = Date.now();
  readonly #ends: Promise<void>;

  constructor(private readonly source: Readable) {
    const touch = () => {
      this.#lastData = Date.now();
    };
    source.on("data", touch);
    // The consumer took what was held back: the source is read again from now.
    this.output.on("drain", touch);
    this.#ends = new Promise((resolve) => {
      source.once("end", () => resolve());
      source.once("close", () => resolve());
      source.once("error", (error) => {
        this.output.destroy(error);
        resolve();
      });
    });
    source.pipe(this.output);
  }

  /** Output the source holds, or could hold, that is not passed on yet: the source is not being read meanwhile. */
  #heldBack(): boolean {
    return this.output.writableNeedDrain || this.source.readableLength > 0 || this.source.readableFlowing === false;
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
    if (!this.output.writableEnded && !this.output.destroyed) {
      this.source.unpipe(this.output);
      this.source.destroy();
      this.output.end();
    }
  }
}
