import { setMaxListeners } from "node:events";
import { DEFAULT_KILL_GRACE_MS, type ExecSpec } from "./backend.js";

export type StopSignal = "SIGTERM" | "SIGKILL";

export interface Supervision {
  readonly cancelled: boolean;
  readonly timedOut: boolean;
  /** The work has ended: stop the timers. `keepKill` leaves a pending KILL armed (for children that ignored TERM). */
  done(options?: { keepKill?: boolean }): void;
}

/**
 * Cancel and timeout handling shared by the backends: on abort (the caller's
 * signal or `closing`) or when `timeoutMs` passes, `send("SIGTERM")`, then
 * `send("SIGKILL")` after the grace.
 */
export function supervise(
  spec: ExecSpec,
  send: (signal: StopSignal) => void | Promise<void>,
  options: { killGraceMs?: number; closing: AbortSignal },
): Supervision {
  let cancelled = false;
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const deliver = (signal: StopSignal) => {
    try {
      void Promise.resolve(send(signal)).catch(() => undefined);
    } catch {
      // A target that is already gone is not an error.
    }
  };
  const stop = () => {
    if (killTimer) return;
    deliver("SIGTERM");
    killTimer = setTimeout(() => deliver("SIGKILL"), options.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
    killTimer.unref();
  };
  const onAbort = () => {
    cancelled = true;
    stop();
  };
  const timeout =
    spec.timeoutMs && spec.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          stop();
        }, spec.timeoutMs)
      : undefined;
  for (const signal of [spec.signal, options.closing]) {
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  }
  return {
    get cancelled() {
      return cancelled;
    },
    get timedOut() {
      return timedOut;
    },
    done(done = {}) {
      clearTimeout(timeout);
      if (!done.keepKill) clearTimeout(killTimer);
      spec.signal.removeEventListener("abort", onAbort);
      options.closing.removeEventListener("abort", onAbort);
    },
  };
}

/** An AbortController whose signal may have any number of listeners (one per running execution). */
export function withManyListeners(controller: AbortController): AbortController {
  setMaxListeners(0, controller.signal);
  return controller;
}
