import type { Extra } from "./spool-side.js";
import { newestLines } from "./text.js";

/** How often a waiting or quiet call tells the client it is alive (clients that reset their timeout on progress keep waiting). */
export const HEARTBEAT_MS = 10_000;
/** Progress messages and resource updates at most this often per call or resource. */
export const THROTTLE_MS = 200;

/** Progress of one tool call: `notifications/progress` with the client's token, a rising count, and a message. */
export class Progress {
  #count = 0;
  #timer: NodeJS.Timeout | null = null;
  #pending: string | null = null;
  #last = 0;
  #output = "";
  readonly #token: string | number | undefined;

  constructor(private readonly extra: Extra) {
    this.#token = extra._meta?.progressToken;
  }

  /** Sends `message` now (a state change). */
  say(message: string): void {
    if (this.#token === undefined || this.extra.signal.aborted) return;
    this.#pending = null;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#send(message);
  }

  /** New output: the newest lines go out, at most every THROTTLE_MS. */
  output(chunk: string): void {
    if (this.#token === undefined) return;
    // Enough of the end to find the newest lines in.
    this.#output = (this.#output + chunk).slice(-4096);
    this.#pending = newestLines(this.#output) || "(output without visible text)";
    if (this.#timer) return;
    const wait = Math.max(0, this.#last + THROTTLE_MS - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#pending !== null) this.#send(this.#pending);
      this.#pending = null;
    }, wait);
  }

  /** Sends what is pending at once (before the result, so progress never follows it). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#pending !== null) this.#send(this.#pending);
    this.#pending = null;
  }

  #send(message: string): void {
    this.#last = Date.now();
    this.#count += 1;
    this.extra
      .sendNotification({ method: "notifications/progress", params: { progressToken: this.#token!, progress: this.#count, message } })
      .catch(() => undefined);
  }
}
