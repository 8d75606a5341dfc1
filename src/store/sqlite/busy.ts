/**
 * SQLite's "database is locked": another connection (the checkpoint worker,
 * a second process on the same file) held a lock longer than the busy
 * timeout. SQLite's busy handler counts the sleeps it asked for, not the
 * time that passed, so a signal that cuts its sleeps short (a profiler's
 * SIGPROF, a child's SIGCHLD) spends a 1 s budget in a few milliseconds.
 * Nothing was written when it says so; the same write is tried again here,
 * a bounded number of times, off the event loop's back.
 */

/** SQLITE_BUSY and SQLITE_LOCKED with any of their extended codes (BUSY_SNAPSHOT, BUSY_RECOVERY, LOCKED_SHAREDCACHE…). */
export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    typeof code === "string" && (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" || code.startsWith("SQLITE_BUSY_") || code.startsWith("SQLITE_LOCKED_"))
  );
}

export interface BusyRetryOptions {
  /** Milliseconds after the first refusal past which the error is given up and thrown. */
  giveUpMs: number;
  /**
   * Told of each refusal as busy or locked (attempt from 1), retried or not, with the number of writes that wait
   * on it (a group commit's appends): tests hook the precise moment here.
   */
  onBusy?: (attempt: number, error: unknown, waiting: number) => void;
}

/** The default: tried again for up to 30 s after the first refusal (each try also waits the busy timeout). */
export const DEFAULT_BUSY_RETRY: BusyRetryOptions = { giveUpMs: 30_000 };

/** The wait before retry number `attempt` (from 1): 2, 4, 8… ms, at most 100 ms. */
export function busyDelay(attempt: number): number {
  return Math.min(100, 2 ** attempt);
}

/**
 * Runs `call`; while it fails with a busy or locked code and `retriable()` says a retry is safe (nothing of it
 * was kept: no transaction left open), runs it again after a short wait, for up to `giveUpMs`.
 */
export async function retryBusy<T>(call: () => T | Promise<T>, retriable: () => boolean, options: BusyRetryOptions): Promise<T> {
  let first = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!isBusy(error) || !retriable()) throw error;
      options.onBusy?.(attempt, error, 1);
      const now = Date.now();
      if (first === 0) first = now;
      if (now - first >= options.giveUpMs) throw error;
      await new Promise((resolve) => setTimeout(resolve, busyDelay(attempt)));
    }
  }
}
