import { HOME_PRINCIPAL_NAME } from "../../protocol/roles.js";
import { SpoolError } from "../../rpc/errors.js";
import type { CoreDeps } from "../deps.js";
import { Buckets } from "../shares.js";

/** What a stored prompt costs besides its text: its loop's row and index entries, about. */
const LOOP_ROW_BYTES = 256;

/**
 * What a principal may add to the store through runs (SPEC: Limits, "Per principal"): at most limits.runsPerMinute
 * runs a minute, and limits.promptBytesPerHour bytes of prompts an hour (each a bucket refilled continuously, as full
 * as a period's worth). Past either, run/create or run/prompt is LIMIT_EXCEEDED with retryAfterMs, and nothing is
 * made: creating runs and queueing prompts without end does not grow the store without end. The home's credential
 * (the operator's) is not held to them.
 */
export class RunRates {
  readonly #runs = new Buckets(60_000);
  readonly #promptBytes = new Buckets(3_600_000);

  constructor(private readonly deps: CoreDeps) {}

  /** Before anything is made: a run (`run`), and a prompt of `prompt` (its text) queued; both are counted, or neither. */
  admit(principal: string, ask: { run?: boolean; prompt?: string }, now = Date.now()): void {
    if (principal === HOME_PRINCIPAL_NAME) return;
    const { runsPerMinute, promptBytesPerHour } = this.deps.config.limits;
    const runWait = ask.run ? this.#runs.need(principal, runsPerMinute, 1, now) : 0;
    if (runWait > 0) throw refused(`"${principal}" created more than ${runsPerMinute} runs in a minute`, "runsPerMinute", runsPerMinute, principal, runWait);
    const bytes = ask.prompt === undefined ? 0 : Buffer.byteLength(ask.prompt) + LOOP_ROW_BYTES;
    const promptWait = bytes > 0 ? this.#promptBytes.need(principal, promptBytesPerHour, bytes, now) : 0;
    if (promptWait > 0)
      throw refused(
        `"${principal}" queued more than ${promptBytesPerHour} bytes of prompts in an hour`,
        "promptBytesPerHour",
        promptBytesPerHour,
        principal,
        promptWait,
      );
    if (ask.run) this.#runs.take(principal, runsPerMinute, 1, now);
    if (bytes > 0) this.#promptBytes.take(principal, promptBytesPerHour, bytes, now);
  }
}

function refused(what: string, limit: string, bound: number, principal: string, retryAfterMs: number): SpoolError {
  return new SpoolError("LIMIT_EXCEEDED", `${what} (limits.${limit}): try again in ${retryAfterMs} ms`, { limit, bound, principal, retryAfterMs });
}
