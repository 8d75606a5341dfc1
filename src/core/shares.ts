import { HOME_PRINCIPAL_NAME } from "../protocol/roles.js";
import { SpoolError } from "../rpc/errors.js";
import type { EntryRow } from "../store/schema.js";
import type { CoreDeps } from "./deps.js";
import { shareOf } from "./share-key.js";

/** Principals whose buckets are remembered; past it the buckets that are full again (idle ones) are forgotten. */
const MAX_BUCKETS = 10_000;

/** What a stored proposal costs besides its text: the row's other columns and its index entries, about. */
const ROW_BYTES = 256;

/**
 * Fair shares of proposals (SPEC: Limits, "Per principal"): a principal may have at most
 * limits.maxPendingPerPrincipal proposals waiting (its own and those of the credentials minted under the same
 * principal: its share), a run at most limits.maxPendingPerRun, a principal makes at most limits.proposalsPerMinute
 * a minute, and its share leaves at most limits.rejectedBytesPerHour of proposals stored rejected or withdrawn an
 * hour (each a bucket that refills continuously, as full as a period's worth: proposing and withdrawing without end
 * does not grow the store without end). The next one is LIMIT_EXCEEDED naming the bound and what to do; nothing is
 * stored. The pending counts are rows the database keeps (migration 021), read whatever the number waiting. The
 * home's credential (the operator's, which can read and delete the database anyway) is not held to them.
 */
export class FairShares {
  readonly #rate = new Buckets(60_000);
  readonly #rejected = new Buckets(3_600_000);

  constructor(private readonly deps: CoreDeps) {}

  /**
   * Whether `principal` may propose in `run` now; takes nothing. The minute's count is taken by `count`, once the
   * proposal is known to be stored: one refused for what it says (its cwd, its runner, …) changes nothing.
   */
  async admit(principal: string, run: { id: number; alias: string }, now = Date.now()): Promise<void> {
    if (principal === HOME_PRINCIPAL_NAME) return;
    const limits = this.deps.config.limits;
    this.#perMinute(principal, this.#rate.need(principal, limits.proposalsPerMinute, 1, now));
    const pending = await this.deps.repos.entries.countPending(run.id, principal);
    const share = pending.share ?? principal;
    const perHour = limits.rejectedBytesPerHour;
    const rejectedWait = this.#rejected.waitFor(share, perHour, now);
    if (rejectedWait > 0)
      throw new SpoolError(
        "LIMIT_EXCEEDED",
        `"${principal}" and the credentials of its principal left more than ${perHour} bytes of proposals rejected or withdrawn in an hour (limits.rejectedBytesPerHour): try again in ${rejectedWait} ms`,
        { limit: "rejectedBytesPerHour", bound: perHour, principal, retryAfterMs: rejectedWait },
      );
    if (pending.principal >= limits.maxPendingPerPrincipal)
      throw tooMany(
        `"${principal}" and the credentials of its principal have ${pending.principal} proposals waiting`,
        "maxPendingPerPrincipal",
        limits.maxPendingPerPrincipal,
        { principal },
      );
    if (pending.run >= limits.maxPendingPerRun)
      throw tooMany(`Run "${run.alias}" has ${pending.run} proposals waiting`, "maxPendingPerRun", limits.maxPendingPerRun, { run: run.alias });
  }

  /** A proposal `admit` let in is about to be stored: it counts toward its principal's minute (refused if others took the rest meanwhile). */
  count(principal: string, now = Date.now()): void {
    if (principal === HOME_PRINCIPAL_NAME) return;
    this.#perMinute(principal, this.#rate.take(principal, this.deps.config.limits.proposalsPerMinute, 1, now));
  }

  #perMinute(principal: string, waitMs: number): void {
    if (waitMs <= 0) return;
    const perMinute = this.deps.config.limits.proposalsPerMinute;
    throw new SpoolError(
      "LIMIT_EXCEEDED",
      `"${principal}" proposed more than ${perMinute} commands in a minute (limits.proposalsPerMinute): try again in ${waitMs} ms`,
      { limit: "proposalsPerMinute", bound: perMinute, principal, retryAfterMs: waitMs },
    );
  }

  /** A proposal was rejected or withdrawn: what it keeps stored is taken from its proposer's share's hour. */
  async rejected(log: EntryRow, now = Date.now()): Promise<void> {
    const principal = log.proposed_by;
    if (principal === null || principal === HOME_PRINCIPAL_NAME) return;
    const row = await this.deps.repos.principals.findLivePrincipal(principal);
    const bytes = Buffer.byteLength(log.attributes) + Buffer.byteLength(log.path) + ROW_BYTES;
    this.#rejected.spend(row ? shareOf(row) : principal, this.deps.config.limits.rejectedBytesPerHour, bytes, now);
  }
}

/**
 * Token buckets per key, each holding at most a period's worth (`capacity`) and refilled continuously over `periodMs`;
 * at most MAX_BUCKETS are kept (past it the full ones, which say nothing, are forgotten).
 */
export class Buckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly periodMs: number) {}

  /** The ms until `key`'s bucket holds `cost` (0: it does now); takes nothing. */
  need(key: string, capacity: number, cost: number, now: number): number {
    const bucket = this.#refilled(key, capacity, now);
    return bucket.tokens < Math.min(cost, capacity) ? this.#until(bucket.tokens, Math.min(cost, capacity), capacity) : 0;
  }

  /** Takes `cost` from `key`'s bucket when it holds that much (0), else takes nothing: the ms until it will. */
  take(key: string, capacity: number, cost: number, now: number): number {
    const bucket = this.#refilled(key, capacity, now);
    if (bucket.tokens < Math.min(cost, capacity)) return this.#until(bucket.tokens, Math.min(cost, capacity), capacity);
    bucket.tokens -= cost;
    return 0;
  }

  /** Takes `cost` from `key`'s bucket whatever it holds (it may go below zero: the wait until it is above is longer). */
  spend(key: string, capacity: number, cost: number, now: number): void {
    this.#refilled(key, capacity, now).tokens -= cost;
  }

  /** 0 while `key`'s bucket is not spent (above zero), else the ms until it will be. */
  waitFor(key: string, capacity: number, now: number): number {
    const bucket = this.#buckets.get(key);
    if (!bucket) return 0;
    const { tokens } = this.#refilled(key, capacity, now);
    return tokens > 0 ? 0 : this.#until(tokens, 1, capacity);
  }

  #refilled(key: string, capacity: number, now: number): { tokens: number; at: number } {
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      if (this.#buckets.size >= MAX_BUCKETS) this.#forgetFull(capacity, now);
      bucket = { tokens: capacity, at: now };
      this.#buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.at) * capacity) / this.periodMs);
    bucket.at = now;
    return bucket;
  }

  #until(tokens: number, wanted: number, capacity: number): number {
    return Math.ceil(((wanted - tokens) * this.periodMs) / capacity);
  }

  #forgetFull(capacity: number, now: number): void {
    for (const [key, b] of this.#buckets) if (b.tokens + ((now - b.at) * capacity) / this.periodMs >= capacity) this.#buckets.delete(key);
  }
}

function tooMany(what: string, limit: string, bound: number, details: Record<string, unknown>): SpoolError {
  return new SpoolError(
    "LIMIT_EXCEEDED",
    `${what}, the most allowed (limits.${limit}: ${bound}): decide the waiting ones first (spool pending, then spool approve or spool reject; run/resolve, or proposal/list to see them)`,
    { limit, bound, ...details },
  );
}
