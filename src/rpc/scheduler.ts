/**
 * Request scheduling. Handlers are mostly synchronous work behind promises
 * (the SQLite driver is synchronous), so requests started in one go hold the
 * event loop until the last one has finished, and no other connection's
 * message is even read meanwhile. Here:
 *
 * - every connection runs its requests from its own FIFO queue, a bounded
 *   number at a time, and only while its peer reads what it was sent;
 * - one request is started at a time, the next once it has finished or waits
 *   on something (a timer, I/O, a group commit);
 * - which connection starts next is decided by fair queuing over the time
 *   their requests take: each connection has a virtual time that grows by
 *   what its requests cost, and the next start goes to the connection whose
 *   next request would finish first in virtual time (its cost predicted from
 *   the same method's recent runs). A connection sending cheap requests (a
 *   ping) is served before connections queueing expensive ones, and a
 *   connection with a backlog gets its share, not everything;
 * - once the current slice of the loop is used up, the next start waits for
 *   the next turn, so reading sockets and firing timers are held off by at
 *   most a slice and one request.
 */

/** How long requests may run back to back before the loop turns (reads other sockets, fires timers). */
export const SLICE_MS = 10;

/** The predicted cost of a method not seen yet, in ms. */
const FIRST_GUESS_MS = 1;

/** A FIFO queue with O(1) push and shift. */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.#head === this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

/** One connection as the scheduler sees it. */
export interface Lane {
  /** Virtual time: what this connection's requests have cost, from when it last had to wait. */
  vt: number;
  /** Tags of the start it asks for. */
  start: number;
  finish: number;
  /** Arrival order, to break ties. */
  order: number;
  grant: (() => void) | null;
}

/** A binary min-heap of waiting lanes by finish tag, then arrival. */
class LaneHeap {
  readonly #items: Lane[] = [];

  get size(): number {
    return this.#items.length;
  }

  static #before(a: Lane, b: Lane): boolean {
    return a.finish < b.finish || (a.finish === b.finish && a.order < b.order);
  }

  push(lane: Lane): void {
    const items = this.#items;
    items.push(lane);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!LaneHeap.#before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): Lane | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && LaneHeap.#before(items[l]!, items[m]!)) m = l;
        if (r < items.length && LaneHeap.#before(items[r]!, items[m]!)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** Who may start a request now: one at a time, by fair queuing, in slices of the loop (see the file's comment). */
export class TurnScheduler {
  #sliceStart: number | null = null;
  #busy = false;
  readonly #waiting = new LaneHeap();
  #wakeScheduled = false;
  /** The start tag of the last lane served: lanes that were idle join from here, with no credit saved up. */
  #clock = 0;
  #order = 0;
  /** Recent cost of each method, in ms (a moving average). */
  readonly #costs = new Map<string, number>();

  constructor(private readonly sliceMs = SLICE_MS) {}

  lane(): Lane {
    return { vt: 0, start: 0, finish: 0, order: 0, grant: null };
  }

  /** Whether this turn's slice is used up. */
  get exhausted(): boolean {
    return this.#sliceStart !== null && performance.now() - this.#sliceStart > this.sliceMs;
  }

  /** What a request of `kind` is expected to cost, in ms. */
  predict(kind: string): number {
    return this.#costs.get(kind) ?? FIRST_GUESS_MS;
  }

  /**
   * Asks to start one request of `kind` for `lane`: null when it may start at
   * once, otherwise a promise that resolves when its turn comes. Every grant
   * must be followed by `release()`.
   */
  acquire(lane: Lane, kind: string): Promise<void> | null {
    lane.start = Math.max(lane.vt, this.#clock);
    lane.finish = lane.start + this.predict(kind);
    lane.order = this.#order++;
    if (!this.#busy && this.#waiting.size === 0 && !this.exhausted) {
      this.#take(lane);
      return null;
    }
    return new Promise((resolve) => {
      lane.grant = resolve;
      this.#waiting.push(lane);
      this.#next();
    });
  }

  /** The request granted to `lane` has run its synchronous part (finished, or waits on something), taking `costMs`. */
  release(lane: Lane, kind: string, costMs: number): void {
    lane.vt = lane.start + costMs;
    const before = this.#costs.get(kind);
    this.#costs.set(kind, before === undefined ? costMs : 0.7 * before + 0.3 * costMs);
    this.#busy = false;
    this.#next();
  }

  #take(lane: Lane): void {
    this.#busy = true;
    this.#clock = Math.max(this.#clock, lane.start);
    if (this.#sliceStart !== null) return;
    this.#sliceStart = performance.now();
    setImmediate(() => {
      this.#sliceStart = null;
    });
  }

  #next(): void {
    if (this.#busy || this.#waiting.size === 0) return;
    if (!this.exhausted) {
      const lane = this.#waiting.pop()!;
      this.#take(lane);
      const grant = lane.grant!;
      lane.grant = null;
      grant();
      return;
    }
    if (this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    setImmediate(() => {
      this.#wakeScheduled = false;
      this.#sliceStart = null;
      this.#next();
    });
  }
}

/** Resolves when `work` settles or, if it is waiting on something, at the end of this turn. */
function settledOrWaiting(work: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setImmediate(resolve);
    const done = () => {
      clearImmediate(timer);
      resolve();
    };
    work.then(done, done);
  });
}

interface Job {
  kind: string;
  overlaps: boolean;
  start(): Promise<unknown>;
  drop(): void;
}

/**
 * One connection's requests: FIFO, at most `concurrency` running (besides
 * overlapping ones), started
 * only while `ready` says so, when the scheduler gives this connection its
 * turn.
 */
export class RequestQueue {
  readonly #queue = new Fifo<Job>();
  readonly #lane: Lane;
  #running = 0;
  /** Overlapping requests started and not finished; they do not count against `concurrency` (their own cap is the caller's). */
  #overlapping = 0;
  #pumping = false;
  #closed = false;

  /**
   * @param ready before each start: null to go on, or a promise to wait for
   * first (the connection's peer reading what it was sent).
   * @param finished called whenever a request has finished (`size` went down).
   */
  constructor(
    private readonly scheduler: TurnScheduler,
    private readonly concurrency: number,
    private readonly ready: () => Promise<unknown> | null = () => null,
    private readonly finished: () => void = () => undefined,
  ) {
    this.#lane = scheduler.lane();
  }

  /** Requests received and not finished: queued and running. */
  get size(): number {
    return this.#queue.size + this.#running + this.#overlapping;
  }

  /**
   * Runs `work` (a request of `kind`, its method) after the requests queued
   * before it; resolves with its result, or with `dropped` if the connection
   * closes before it starts. `overlaps`: for ordered writes (stream appends,
   * finishing calls), capped by the caller (maxUnackedChunks) and of bounded
   * cost, which mostly wait for the group commit: they start as they arrive,
   * without waiting for a turn or for each other, so the appends that arrive
   * together share one commit as before.
   */
  run<T, D>(kind: string, work: () => Promise<T>, dropped: D, overlaps = false): Promise<T | D> {
    if (this.#closed) return Promise.resolve(dropped);
    if (overlaps && !this.#pumping && this.#queue.size === 0 && this.ready() === null) {
      // Nothing queued ahead of it and the peer reads: started here as the pump would start it now, without a
      // job, its closures and a promise around the work (one per stream chunk).
      this.#overlapping++;
      const running = work();
      running.then(this.#overlapFinished, this.#overlapFinished);
      return running;
    }
    return new Promise<T | D>((resolve, reject) => {
      this.#queue.push({
        kind,
        overlaps,
        start: () => {
          const running = work();
          running.then(resolve, reject);
          return running;
        },
        drop: () => resolve(dropped),
      });
      void this.#pump();
    });
  }

  /** The connection closed: what has not started never will. */
  close(): void {
    this.#closed = true;
    for (let job = this.#queue.shift(); job; job = this.#queue.shift()) job.drop();
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (!this.#closed && this.#queue.size > 0 && (this.#running < this.concurrency || this.#queue.peek()!.overlaps)) {
        const waitFor = this.ready();
        if (waitFor) {
          await waitFor;
          continue;
        }
        if (this.#queue.peek()!.overlaps) {
          // Ordered writes start as they come, in order, without waiting for a turn (see `run`).
          this.#start(this.#queue.shift()!);
          continue;
        }
        const kind = this.#queue.peek()!.kind;
        const turn = this.scheduler.acquire(this.#lane, kind);
        if (turn) await turn;
        const started = performance.now();
        try {
          const job = this.#closed ? undefined : this.#queue.shift();
          if (!job) break;
          // Its synchronous work runs before anyone's next start, so the slice and its cost count it.
          await settledOrWaiting(this.#start(job));
        } finally {
          this.scheduler.release(this.#lane, kind, performance.now() - started);
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** An overlapping request started by `run` itself has finished. */
  readonly #overlapFinished = (): void => {
    this.#overlapping--;
    if (!this.#pumping && this.#queue.size > 0) void this.#pump();
    this.finished();
  };

  /** Starts a job; the promise settles (never rejects) once it has finished and the queue took note. */
  #start(job: Job): Promise<void> {
    if (job.overlaps) this.#overlapping++;
    else this.#running++;
    const finish = () => {
      if (job.overlaps) this.#overlapping--;
      else this.#running--;
      if (!this.#pumping && this.#queue.size > 0) void this.#pump();
      this.finished();
    };
    return job.start().then(finish, finish);
  }
}
