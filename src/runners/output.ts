import { PassThrough, type Readable } from "node:stream";

/**
 * Passes a process's output stream through, and can stop waiting for it.
 *
 * A background grandchild can keep a pipe open long after the command itself
 * exited, so "the stream ended" may never come. After the process has ended,
 * `settle()` waits until the source ends, or until it has been quiet for
 * `quietMs` while nothing is held back by a slow consumer; then it ends the
 * output cleanly and lets go of the source.
 */
export class OutputPipe {
  readonly output = new PassThrough({ highWaterMark: 64 * 1024 });
  #lastData = Date.now();
  readonly #ends: Promise<void>;

  constructor(private readonly source: Readable) {
    source.on("data", () => {
      this.#lastData = Date.now();
    });
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

  /** Resolves when the output has ended: at the source's end, or after the quiet period once the process is gone. */
  async settle(quietMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const quiet = new Promise<void>((resolve) => {
      const check = () => {
        const idle = Date.now() - this.#lastData >= quietMs;
        const backedUp = this.output.writableNeedDrain || this.source.readableLength > 0;
        if (idle && !backedUp) resolve();
        else timer = setTimeout(check, Math.max(10, quietMs / 2));
      };
      timer = setTimeout(check, quietMs);
    });
    await Promise.race([this.#ends, quiet]);
    clearTimeout(timer);
    if (!this.output.writableEnded && !this.output.destroyed) {
      this.source.unpipe(this.output);
      this.source.destroy();
      this.output.end();
    }
  }
}
