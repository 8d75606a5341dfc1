import type { QueuedEvent } from "../../store/activity-rows.js";
import type { NewAudit } from "../../store/schema.js";
import type { CoreDeps } from "../deps.js";

/** Rows one write takes at most: that many queued are written at once. */
const MAX_BATCH = 512;
/**
 * How long a row waits for others to share its write, at most. A commit writes every page it touched (16 KiB
 * each): proposals a few milliseconds apart share their audit and outbox pages instead of each writing its own.
 */
export const ACTIVITY_FLUSH_MS = 5;

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * The audit trail's and the notifications' rows, written just after the change they record has been answered:
 * what is queued within ACTIVITY_FLUSH_MS (a proposal's audit row and its event, or a burst's) goes in one
 * transaction, so the caller's answer leaves first and proposals close together share one commit. At most
 * MAX_BATCH rows wait (that many are written at once); reads of the trail and the outbox `flush` first; `stop`
 * writes what is left, and after it each row is written at once. A process killed within those milliseconds
 * loses the rows not yet written (the proposal itself was stored before).
 */
export class ActivityWrites {
  #audit: NewAudit[] = [];
  #events: QueuedEvent[] = [];
  #waiters: Waiter[] = [];
  /** The write of what is queued, ACTIVITY_FLUSH_MS after the first of it. */
  #timer: NodeJS.Timeout | null = null;
  #writing: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(private readonly deps: Pick<CoreDeps, "repos">) {}

  /** Settles once the row is stored (or its write failed). */
  audit(row: NewAudit): Promise<void> {
    return this.#queue(() => this.#audit.push(row));
  }

  event(event: QueuedEvent): Promise<void> {
    return this.#queue(() => this.#events.push(event));
  }

  /** Writes what is queued; later rows are written at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.flush();
  }

  #queue(push: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      push();
      this.#waiters.push({ resolve, reject });
      if (this.#stopped || this.#waiters.length >= MAX_BATCH) void this.flush();
      else this.#timer ??= setTimeout(() => void this.flush(), ACTIVITY_FLUSH_MS);
    });
  }

  /**
   * Writes what is queued now (its timer's end, a full batch, a read of the trail or the outbox, stop); one write
   * after another, in the order they were queued.
   */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const audit = this.#audit;
    const events = this.#events;
    const waiters = this.#waiters;
    if (waiters.length === 0) return this.#writing;
    this.#audit = [];
    this.#events = [];
    this.#waiters = [];
    // A write that throws instead of rejecting fails its rows alike: the chain goes on for the rows after them.
    const write = async () => this.deps.repos.activity.writeActivity(audit, events);
    this.#writing = this.#writing.then(() =>
      write().then(
        () => {
          for (const w of waiters) w.resolve();
        },
        (error: unknown) => {
          for (const w of waiters) w.reject(error);
        },
      ),
    );
    return this.#writing;
  }
}
