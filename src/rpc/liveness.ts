import type { Socket } from "node:net";
import type { WebSocket } from "ws";

export interface LivenessOptions {
  /** Silence after which the socket is terminated; 0 turns the check off. */
  timeoutMs: number;
  /** How often to look and ping (default timeoutMs / 4, at least 250 ms). */
  intervalMs?: number;
  /**
   * The TCP socket under `socket` (what the HTTP upgrade handed over). When
   * given, any inbound byte counts as life, not just whole frames, so a peer
   * slowly uploading one large frame (its pong queued behind it) is not
   * taken for dead.
   */
  raw?: Socket;
  /** Called just before a silent socket is terminated. */
  onSilent?: (silentMs: number) => void;
}

/**
 * Keeps watch over one WebSocket: pings it every `intervalMs` and
 * terminates it once nothing (no pong, ping, message or, with `raw`, any
 * byte) has come from the peer for `timeoutMs`. Terminating destroys the TCP
 * socket, so the usual close path runs at once (no closing handshake that a
 * frozen peer would never answer). Returns a function that stops the watch;
 * it also stops by itself when the socket closes.
 *
 * Only what the peer sends counts: a peer reading so slowly that a ping
 * waits longer than `timeoutMs` behind queued output is taken for dead too
 * (Node reports no partial progress of a write, so a slow reader and a
 * frozen one look the same from here).
 */
export function watchLiveness(socket: WebSocket, options: LivenessOptions): () => void {
  const { timeoutMs } = options;
  if (!(timeoutMs > 0)) return () => undefined;
  const intervalMs = Math.max(250, options.intervalMs ?? Math.floor(timeoutMs / 4));
  const raw = options.raw;
  let lastSeen = Date.now();
  const alive = () => {
    lastSeen = Date.now();
  };

  socket.on("pong", alive);
  socket.on("ping", alive);
  socket.on("message", alive);
  raw?.on("data", alive);

  let lastTick = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    // A tick far behind schedule means this process stalled (a long GC or sync work, a
    // suspended machine): it sent no pings meanwhile, so that time is not the peer's silence.
    const stalledMs = now - lastTick - intervalMs;
    if (stalledMs > intervalMs) lastSeen = Math.min(now, lastSeen + stalledMs);
    lastTick = now;
    const silentMs = now - lastSeen;
    if (silentMs >= timeoutMs) {
      stop();
      options.onSilent?.(silentMs);
      socket.terminate();
      return;
    }
    if (socket.readyState === socket.OPEN) {
      try {
        socket.ping();
      } catch {
        // The socket is going away; its close event stops the watch.
      }
    }
  }, intervalMs);
  timer.unref();

  const stop = () => {
    clearInterval(timer);
    socket.off("pong", alive);
    socket.off("ping", alive);
    socket.off("message", alive);
    raw?.off("data", alive);
    socket.off("close", stop);
  };
  socket.on("close", stop);
  return stop;
}
