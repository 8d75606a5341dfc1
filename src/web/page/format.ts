import { ENTRY, entryStatusWord, OPEN_RUN, RUN, runStatusWord } from "../../protocol/status.js";

// One escaping function for every client, next to the proposal facts it shows.
export { escapeControl, hasControl } from "../../protocol/proposal-facts.js";
export { ENTRY, entryStatusWord, OPEN_RUN, RUN, runStatusWord };

/** How far the server's clock is ahead of this browser's (ms), measured when the page connects. */
let serverAhead = 0;

/** Takes a clock reading of the server, `time`, made between `sent` and `received` by this browser's clock. */
export function setServerClock(time: number, sent: number, received: number): void {
  serverAhead = time - (sent + received) / 2;
}

/** Now by the server's clock (as near as the page can tell): what times the server sends are compared with. */
export function serverNow(): number {
  return Date.now() + serverAhead;
}

/** "3s", "5m", "2h", "4d": how long ago a time of the server's was. */
export function age(since: number, now = serverNow()): string {
  const s = Math.max(0, Math.round((now - since) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** "812 B", "4.2 KiB", "31 MiB". */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** "340 ms", "12.5 s", "3m 20s", "1h 5m". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** "rejected by deadline in 4 min": when the server's deadline (decisionTimeoutMs) rejects a waiting proposal. */
export function deadlineText(at: number, now = serverNow()): string {
  const left = at - now;
  if (left <= 0) return "rejected by deadline now";
  const s = Math.ceil(left / 1000);
  if (s < 60) return `rejected by deadline in ${s} s`;
  const m = Math.ceil(s / 60);
  return m < 120 ? `rejected by deadline in ${m} min` : `rejected by deadline in ${Math.round(m / 60)} h`;
}

/** A CSS class per status word: the colour says done, failed, waiting, running at a glance. */
export function statusClass(word: string): string {
  return `status status-${word.replace(/[^a-z]/g, "")}`;
}
