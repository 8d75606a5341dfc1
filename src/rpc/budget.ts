/** Something that holds memory for one client and can be made to let go of it (a connection). */
export interface MemoryHolder {
  readonly id: string;
  /** Bytes held now: output not yet flushed, requests not yet answered, chunks queued for watchers. */
  readonly held: number;
  /** Whether it is already on its way out (its bytes are let go when its socket is gone). */
  readonly closing: boolean;
  /** Closes it for the server's sake (1013); it must be \`closing\` from then on. */
  evict(reason: string): void;
}

/**
 * The server-wide budget of memory held for clients. Connections report what
 * they hold as it changes; when the total passes the ceiling, the connection
 * holding the most is closed (1013, try again later), and the next, until
 * what the others hold is under it again. Looking for the largest holder costs one pass over the
 * connections, and happens only when the ceiling is passed.
 */
export class ClientMemory {
  #total = 0;
  readonly #holders = new Set<MemoryHolder>();

  constructor(readonly limit: number) {}

  /** Bytes held for all clients together. */
  get total(): number {
    return this.#total;
  }

  add(holder: MemoryHolder): void {
    this.#holders.add(holder);
  }

  delete(holder: MemoryHolder): void {
    this.#holders.delete(holder);
  }

  /** A holder's bytes changed by `delta` (negative: released). */
  change(delta: number): void {
    this.#total += delta;
    if (delta > 0 && this.#total > this.limit) this.#reclaim();
  }

  #reclaim(): void {
    for (;;) {
      // Connections already closing still hold their bytes until their sockets are gone; they are not chosen again.
      let leaving = 0;
      let largest: MemoryHolder | null = null;
      for (const holder of this.#holders) {
        if (holder.closing) leaving += holder.held;
        else if (holder.held > (largest?.held ?? 0)) largest = holder;
      }
      if (this.#total - leaving <= this.limit || !largest) return;
      largest.evict(
        `server memory budget: clients hold ${this.#total} bytes (limits.maxClientMemoryBytes ${this.limit}), this connection the most (${largest.held})`,
      );
    }
  }
}
