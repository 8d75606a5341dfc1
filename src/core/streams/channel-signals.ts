/** What happened to a channel: a chunk was stored, or it ended. */
export type ChannelChange = "data" | "end";

type Waker = (change: ChannelChange) => void;

/**
 * In-process waits for a channel's next chunk or end: the agent's tools (wait, write, kill, a command's first
 * result) wake on the events the core already emits for watchers, instead of reading the store on a timer.
 * WatcherHub touches a channel at each publish and end; the cluster link touches it for what other servers did.
 * A wait for ends only is not woken by chunks (a loud command does not make a `wait` read the store per chunk).
 */
export class ChannelSignals {
  readonly #data = new Map<number, Set<Waker>>();
  readonly #ends = new Map<number, Set<Waker>>();

  /** Something happened to the channel: the waits on it return (those for ends only, at its end). */
  touch(entryId: number, change: ChannelChange): void {
    if (change === "end") this.#wake(this.#ends, entryId, change);
    this.#wake(this.#data, entryId, change);
  }

  #wake(map: Map<number, Set<Waker>>, entryId: number, change: ChannelChange): void {
    if (map.size === 0) return;
    const set = map.get(entryId);
    if (!set) return;
    for (const wake of [...set]) wake(change);
  }

  /**
   * A wait on any of these channels, armed now (arm it, then read the store, then await: nothing that happens
   * between the read and the wait is missed). `changed` resolves with what happened first, or null after `ms` or on
   * abort; `cancel` disarms it. `data: false` waits for an end only.
   */
  arm(entryIds: readonly number[], ms: number, options: { signal?: AbortSignal | undefined; data?: boolean } = {}) {
    const map = options.data === false ? this.#ends : this.#data;
    const { signal } = options;
    let settle: (value: ChannelChange | null) => void = () => {};
    const changed = new Promise<ChannelChange | null>((resolve) => {
      settle = resolve;
    });
    let done = false;
    const finish = (value: ChannelChange | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      for (const id of entryIds) {
        const set = map.get(id);
        set?.delete(finish);
        if (set?.size === 0) map.delete(id);
      }
      settle(value);
    };
    const onAbort = () => finish(null);
    const timer = setTimeout(() => finish(null), Math.max(0, ms));
    if (signal?.aborted) finish(null);
    else {
      signal?.addEventListener("abort", onAbort, { once: true });
      for (const id of entryIds) {
        const set = map.get(id) ?? new Set<Waker>();
        set.add(finish);
        map.set(id, set);
      }
    }
    return { changed, cancel: () => finish(null) };
  }

  /** Waits armed now (tests: none is left behind). */
  get pending(): number {
    let n = 0;
    for (const map of [this.#data, this.#ends]) for (const set of map.values()) n += set.size;
    return n;
  }
}
