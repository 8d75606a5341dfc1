import { SpoolError } from "./errors.js";

/** What the read cap needs of a connection: who it is, whether it is gone, and when its output has left the process. */
export interface ReadHolder {
  readonly id: string;
  readonly closed: boolean;
  onClose(listener: () => void): void;
  /** Bytes handed to the transport so far (a running total). */
  readonly sentBytes?: number;
  /** Resolves true once the first `mark` bytes ever sent have been flushed to the socket (false if the connection closes first). */
  whenFlushed?(mark: number): Promise<boolean>;
  /** Bytes whose write to the socket completed so far (a running total): whether its peer reads at all. */
  readonly flushedBytes?: number;
  /** Closes it for the server's sake (1013). */
  evict?(detail: string): void;
}

/** Reads waiting for the cap, all connections together, past which a further read is refused (LIMIT_EXCEEDED) rather than queued. */
export const DEFAULT_MAX_WAITING_READS = 4096;

interface Waiter {
  holder: ReadHolder;
  bytes: number;
  resolve: (grant: ReadGrant) => void;
  reject: (error: Error) => void;
}

/** One connection as the cap sees it: what it holds, and its reads waiting, in order. */
interface HolderState {
  holder: ReadHolder;
  held: number;
  grants: Set<ReadGrant>;
  waiting: Waiter[];
  /** Its flushed total when last looked at, and since when it has not moved while it held bytes. */
  flushed: number;
  stillSince: number;
}

/**
 * Bytes of one read held against the cap, from before the store is read until its reply has left the process.
 * Give back what the read did not use with `shrink`, and the rest with `releaseWhenFlushed` once the reply
 * is handed to the connection (or `release` when nothing is sent).
 */
export class ReadGrant {
  #bytes: number;
  #released = false;

  constructor(
    private readonly cap: ReadCap,
    private readonly state: HolderState,
    bytes: number,
  ) {
    this.#bytes = bytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The read turned out smaller: keep only `bytes` (never grows). */
  shrink(bytes: number): void {
    if (this.#released || bytes >= this.#bytes) return;
    const freed = this.#bytes - Math.max(0, bytes);
    this.#bytes -= freed;
    this.cap._give(this.state, freed);
  }

  /** Gives the bytes back now. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.state.grants.delete(this);
    const bytes = this.#bytes;
    this.#bytes = 0;
    this.cap._give(this.state, bytes);
  }

  /**
   * For a reply that waits for others before it is sent (a batch's): gives
   * the bytes back now, so the batch's other reads do not wait for them, and
   * returns what to call once the message carrying it is handed to the
   * connection: the bytes count again from then (at once, past the cap if
   * need be: the reply exists already) until it is flushed.
   */
  defer(): () => void {
    const bytes = this.#bytes;
    const { cap, state } = this;
    this.release();
    return () => {
      if (state.holder.closed || bytes <= 0) return;
      cap._charge(state, bytes).releaseWhenFlushed();
    };
  }

  /**
   * Gives the bytes back once everything the connection has sent until now
   * (the reply carrying this read included) has been written to its socket,
   * or when the connection closes. Call it after the reply was sent.
   */
  releaseWhenFlushed(): void {
    const { holder } = this.state;
    if (this.#released || holder.closed || holder.whenFlushed === undefined || holder.sentBytes === undefined) {
      this.release();
      return;
    }
    void holder.whenFlushed(holder.sentBytes).then(() => this.release());
  }
}

/**
 * The server-wide cap on bytes of reads in flight: data read from the store
 * for a client (an `entry/get` body, a replay page) and not yet written to
 * its socket. A read asks for its bytes before it touches the store; when
 * they would take the total past `limit`, it waits its turn instead of
 * allocating. Waiting reads are served in turns across connections (each
 * connection's own in order), so a connection with many reads queued does
 * not go before one that has one. One connection holds at most `share`
 * bytes at once (a single read larger than that still goes, alone): a peer
 * that stops reading keeps what it holds until it reads or is closed (by
 * liveness, the memory budget, or `stallMs` below while others wait), and
 * the others go on with the rest.
 */
export class ReadCap {
  #inFlight = 0;
  #peak = 0;
  #waitingCount = 0;
  readonly #states = new Map<ReadHolder, HolderState>();
  /** Connections with reads waiting, in turn order. */
  #turns: HolderState[] = [];
  readonly share: number;
  readonly maxWaiting: number;
  readonly stallMs: number;
  #stallTimer: NodeJS.Timeout | null = null;

  /**
   * @param options.stallMs while reads wait, a connection that holds bytes
   * and has not had a byte of its output written for this long is closed
   * (1013), so a few peers that stop reading cannot keep every other read
   * waiting; 0 (the default) never closes one for this.
   */
  constructor(
    readonly limit: number,
    options: { share?: number; maxWaiting?: number; stallMs?: number } = {},
  ) {
    this.share = Math.min(limit, options.share ?? Math.ceil(limit / 4));
    this.maxWaiting = options.maxWaiting ?? DEFAULT_MAX_WAITING_READS;
    this.stallMs = options.stallMs ?? 0;
  }

  /** Bytes of reads in flight now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The most bytes in flight at once since the start (or the last `resetPeak`). */
  get peak(): number {
    return this.#peak;
  }

  /** Reads waiting for room. */
  get waiting(): number {
    return this.#waitingCount;
  }

  resetPeak(): void {
    this.#peak = this.#inFlight;
  }

  /** Reads of `holder` waiting for room. */
  waitingFor(holder: ReadHolder): number {
    return this.#states.get(holder)?.waiting.length ?? 0;
  }

  /** Bytes `holder` holds now. */
  heldBy(holder: ReadHolder): number {
    return this.#states.get(holder)?.held ?? 0;
  }

  /**
   * Takes `bytes` (at most `limit`) for a read of `holder`: at once when
   * they fit, else in its turn. Rejects when the connection closes first,
   * and with LIMIT_EXCEEDED when too many reads wait already.
   */
  acquire(holder: ReadHolder, bytes: number): Promise<ReadGrant> {
    if (holder.closed) return Promise.reject(new Error("connection closed"));
    const want = Math.max(0, Math.min(Math.ceil(bytes), this.limit));
    const state = this.#stateOf(holder);
    if (state.waiting.length === 0 && this.#turns.length === 0 && this.#fits(state, want)) return Promise.resolve(this.#grant(state, want));
    if (this.#waitingCount >= this.maxWaiting) {
      return Promise.reject(
        new SpoolError(
          "LIMIT_EXCEEDED",
          `The server has ${this.#waitingCount} reads waiting for room (limits.maxReadBytesInFlight ${this.limit}); try again later`,
          { limit: this.limit },
        ),
      );
    }
    return new Promise((resolve, reject) => {
      state.waiting.push({ holder, bytes: want, resolve, reject });
      this.#waitingCount++;
      if (state.waiting.length === 1) this.#turns.push(state);
      this.#admit();
      this.#watchStalls();
    });
  }

  /** @internal Counts `bytes` of `state` at once, without waiting for room (a batch's reply, already made). */
  _charge(state: HolderState, bytes: number): ReadGrant {
    return this.#grant(state, bytes);
  }

  /** @internal Bytes given back by a grant of `state`. */
  _give(state: HolderState, bytes: number): void {
    if (bytes <= 0) return;
    this.#inFlight -= bytes;
    state.held -= bytes;
    this.#admit();
  }

  #fits(state: HolderState, bytes: number): boolean {
    return this.#inFlight + bytes <= this.limit && !this.#overShare(state, bytes);
  }

  /** Whether `bytes` more would take the connection past its share (one read always goes when it holds nothing). */
  #overShare(state: HolderState, bytes: number): boolean {
    return state.held > 0 && state.held + bytes > this.share;
  }

  #grant(state: HolderState, bytes: number): ReadGrant {
    const grant = new ReadGrant(this, state, bytes);
    if (state.held === 0) {
      // A stall is counted from when it came to hold something.
      state.flushed = state.holder.flushedBytes ?? 0;
      state.stillSince = Date.now();
    }
    state.grants.add(grant);
    state.held += bytes;
    this.#inFlight += bytes;
    if (this.#inFlight > this.#peak) this.#peak = this.#inFlight;
    return grant;
  }

  /**
   * Serves waiting reads in turns: each connection in turn order gets its
   * next read if it fits. A connection at its share is passed over (it waits
   * for its own bytes to come back); a read that does not fit the room left
   * stops the round, so a large read is not overtaken for ever by small ones.
   */
  #admit(): void {
    let passed = 0;
    while (this.#turns.length > passed) {
      const state = this.#turns[passed]!;
      const next = state.waiting[0]!;
      if (this.#overShare(state, next.bytes)) {
        passed++;
        continue;
      }
      if (this.#inFlight + next.bytes > this.limit) return;
      state.waiting.shift();
      this.#waitingCount--;
      this.#turns.splice(passed, 1);
      // Its next read, if any, goes to the back of the turns.
      if (state.waiting.length) this.#turns.push(state);
      next.resolve(this.#grant(state, next.bytes));
    }
  }

  #stateOf(holder: ReadHolder): HolderState {
    let state = this.#states.get(holder);
    if (!state) {
      const created: HolderState = { holder, held: 0, grants: new Set(), waiting: [], flushed: holder.flushedBytes ?? 0, stillSince: Date.now() };
      state = created;
      this.#states.set(holder, created);
      holder.onClose(() => this.#closed(created));
    }
    return state;
  }

  /** While reads wait, looks every half `stallMs` for holders whose peers have stopped reading. */
  #watchStalls(): void {
    if (this.stallMs <= 0 || this.#stallTimer || this.#waitingCount === 0) return;
    this.#stallTimer = setInterval(() => this.#closeStalled(), Math.max(50, this.stallMs / 2));
    this.#stallTimer.unref();
  }

  /**
   * Closes (1013) the connections holding bytes whose output has not moved
   * for `stallMs`, the largest first, until the next waiting read would fit;
   * their bytes come back when they are gone.
   */
  #closeStalled(): void {
    if (this.#waitingCount === 0) {
      if (this.#stallTimer) clearInterval(this.#stallTimer);
      this.#stallTimer = null;
      return;
    }
    const now = Date.now();
    const stalled: HolderState[] = [];
    for (const state of this.#states.values()) {
      const flushed = state.holder.flushedBytes ?? 0;
      if (state.held === 0 || flushed !== state.flushed) {
        state.flushed = flushed;
        state.stillSince = now;
      } else if (now - state.stillSince >= this.stallMs && !state.holder.closed && state.holder.evict) stalled.push(state);
    }
    // The first read that waits for room, not for its own connection's bytes to come back (those wait for their peer).
    const head = this.#turns.map((s) => s.waiting[0]!).find((w) => !this.#overShare(this.#states.get(w.holder)!, w.bytes));
    if (!head) return;
    let free = this.limit - this.#inFlight;
    for (const state of stalled.sort((a, b) => b.held - a.held)) {
      if (free >= head.bytes) break;
      free += state.held;
      state.holder.evict!(
        `read cap: it holds ${state.held} bytes of replies its peer has not read for ${now - state.stillSince} ms while ${this.#waitingCount} reads wait (limits.maxReadBytesInFlight ${this.limit})`,
      );
    }
  }

  /** The connection is gone: its reads waiting are refused, what it held comes back. */
  #closed(state: HolderState): void {
    const waiting = state.waiting.splice(0);
    this.#waitingCount -= waiting.length;
    this.#turns = this.#turns.filter((s) => s !== state);
    for (const waiter of waiting) waiter.reject(new Error("connection closed"));
    for (const grant of [...state.grants]) grant.release();
    this.#states.delete(state.holder);
    this.#admit();
  }
}
