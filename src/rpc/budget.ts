/** The group of the home's connections (core/share-key.ts HOME_SHARE): taken from last. */
export const HOME_GROUP = "home";

/** Something that holds memory for one client and can be made to let go of it (a connection). */
export interface MemoryHolder {
  readonly id: string;
  /** Whose bounds it counts against: its principal's share (the holders of one principal are taken from together). */
  readonly group: string;
  /** Bytes held now: output not yet flushed, requests not yet answered, chunks queued for watchers. */
  readonly held: number;
  /** Whether it is already on its way out (its bytes are let go when its socket is gone). */
  readonly closing: boolean;
  /** Closes it for the server's sake (1013); it must be \`closing\` from then on. */
  evict(reason: string): void;
}

/**
 * The server-wide budget of memory held for clients. Connections report what they hold as it changes; when the total
 * passes the ceiling, the principal (share) whose connections hold the most together gives first: its connection
 * holding the most is closed (1013, try again later), and the next, until what the others hold is under it again. So
 * one principal's excess, spread over many connections, never closes another's. The home's share (`HOME_GROUP`) gives
 * last. Looking for the largest costs one pass over the connections, and happens only when the ceiling is passed.
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
      const groups = new Map<string, { held: number; largest: MemoryHolder }>();
      for (const holder of this.#holders) {
        if (holder.closing) {
          leaving += holder.held;
          continue;
        }
        if (holder.held <= 0) continue;
        const group = groups.get(holder.group);
        if (!group) groups.set(holder.group, { held: holder.held, largest: holder });
        else {
          group.held += holder.held;
          if (holder.held > group.largest.held) group.largest = holder;
        }
      }
      const excess = this.#total - leaving - this.limit;
      if (excess <= 0) return;
      // The home's connections give last, while closing the others' can bring the total under the ceiling: when it
      // cannot (the home alone holds too much), the home's give first, and nobody else's is closed for nothing.
      const others = [...groups].reduce((sum, [name, group]) => (name === HOME_GROUP ? sum : sum + group.held), 0);
      const spareHome = others >= excess;
      let chosen: { held: number; largest: MemoryHolder } | null = null;
      // Given last: the home's while it is spared, else everyone else's.
      const last = (g: { largest: MemoryHolder }) => (g.largest.group === HOME_GROUP) === spareHome;
      for (const group of groups.values()) {
        if (!chosen || (last(chosen) && !last(group)) || (last(chosen) === last(group) && group.held > chosen.held)) chosen = group;
      }
      if (!chosen) return;
      const { largest } = chosen;
      largest.evict(
        `server memory budget: clients hold ${this.#total} bytes (limits.maxClientMemoryBytes ${this.limit}); this connection's principal holds the most (${chosen.held}), this connection ${largest.held} of it`,
      );
    }
  }
}
