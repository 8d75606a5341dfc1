/** Who waits on a connection's output: for what the peer has not read to fall below a size, or for a running total to be flushed. */
export class OutputWaiters {
  #drain: { below: number; resolve: (drained: boolean) => void }[] = [];
  readonly #flush: { mark: number; resolve: (flushed: boolean) => void }[] = [];

  /** Something waits for its peer to read. */
  get waiting(): boolean {
    return this.#drain.length > 0 || this.#flush.length > 0;
  }

  /** Something waits for the unflushed output to fall. */
  get drainWaiting(): boolean {
    return this.#drain.length > 0;
  }

  /** Resolves true once no more than `below` bytes are unflushed (see wakeDrained), false if the connection goes first. */
  drained(below: number): Promise<boolean> {
    return new Promise((resolve) => this.#drain.push({ below, resolve }));
  }

  /** Resolves true once `mark` bytes have been flushed (see wakeFlushed), false if the connection goes first. */
  flushed(mark: number): Promise<boolean> {
    return new Promise((resolve) => this.#flush.push({ mark, resolve }));
  }

  /** Wakes the flush waiters whose mark `flushedBytes` reaches (all of them, with false, when the connection is `gone`). */
  wakeFlushed(flushedBytes: number, gone: boolean): void {
    while (this.#flush.length && (gone || this.#flush[0]!.mark <= flushedBytes)) {
      this.#flush.shift()!.resolve(!gone);
    }
  }

  /** Wakes the drain waiters that `buffered` unflushed bytes satisfy; with null, all of them with false (the connection is going). */
  wakeDrained(buffered: number | null): void {
    if (!this.#drain.length) return;
    if (buffered === null) {
      for (const waiter of this.#drain.splice(0)) waiter.resolve(false);
      return;
    }
    const still: { below: number; resolve: (drained: boolean) => void }[] = [];
    for (const waiter of this.#drain) {
      if (buffered <= waiter.below) waiter.resolve(true);
      else still.push(waiter);
    }
    this.#drain = still;
  }
}
