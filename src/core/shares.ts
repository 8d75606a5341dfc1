import { HOME_PRINCIPAL_NAME } from "../protocol/roles.js";
import { SpoolError } from "../rpc/errors.js";
import type { CoreDeps } from "./deps.js";

/** Principals whose rate is remembered; past it the buckets that are full again (idle ones) are forgotten. */
const MAX_BUCKETS = 10_000;

/**
 * Fair shares of proposals (SPEC: Limits, "Per principal"): a principal may have at most
 * limits.maxPendingPerPrincipal proposals waiting, a run at most limits.maxPendingPerRun, and a principal makes at
 * most limits.proposalsPerMinute a minute (a bucket that refills continuously, as full as a minute's worth). The next
 * one is LIMIT_EXCEEDED naming the bound and how to decide the waiting ones; nothing is stored. The home's
 * credential (the operator's, which can read and delete the database anyway) is not held to them.
 */
export class FairShares {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly deps: CoreDeps) {}

  async admit(principal: string, run: { id: number; alias: string }, now = Date.now()): Promise<void> {
    if (principal === HOME_PRINCIPAL_NAME) return;
    const limits = this.deps.config.limits;
    this.#take(principal, limits.proposalsPerMinute, now);
    // Counted up to the bounds: what a check needs, never more index entries than a bound.
    const pending = await this.deps.repos.entries.countPending(run.id, principal, { run: limits.maxPendingPerRun, principal: limits.maxPendingPerPrincipal });
    if (pending.principal >= limits.maxPendingPerPrincipal)
      throw tooMany(`"${principal}" has ${pending.principal} proposals waiting`, "maxPendingPerPrincipal", limits.maxPendingPerPrincipal, { principal });
    if (pending.run >= limits.maxPendingPerRun)
      throw tooMany(`Run "${run.alias}" has ${pending.run} proposals waiting`, "maxPendingPerRun", limits.maxPendingPerRun, { run: run.alias });
  }

  #take(principal: string, perMinute: number, now: number): void {
    let bucket = this.#buckets.get(principal);
    if (!bucket) {
      if (this.#buckets.size >= MAX_BUCKETS) this.#forgetIdle(perMinute, now);
      bucket = { tokens: perMinute, at: now };
      this.#buckets.set(principal, bucket);
    }
    bucket.tokens = Math.min(perMinute, bucket.tokens + ((now - bucket.at) * perMinute) / 60_000);
    bucket.at = now;
    if (bucket.tokens < 1) {
      const waitMs = Math.ceil(((1 - bucket.tokens) * 60_000) / perMinute);
      throw new SpoolError(
        "LIMIT_EXCEEDED",
        `"${principal}" proposed more than ${perMinute} commands in a minute (limits.proposalsPerMinute): try again in ${waitMs} ms`,
        { limit: "proposalsPerMinute", bound: perMinute, principal, retryAfterMs: waitMs },
      );
    }
    bucket.tokens -= 1;
  }

  #forgetIdle(perMinute: number, now: number): void {
    for (const [name, b] of this.#buckets) if (b.tokens + ((now - b.at) * perMinute) / 60_000 >= perMinute) this.#buckets.delete(name);
  }
}

function tooMany(what: string, limit: string, bound: number, details: Record<string, unknown>): SpoolError {
  return new SpoolError(
    "LIMIT_EXCEEDED",
    `${what}, the most allowed (limits.${limit}: ${bound}): decide the waiting ones first (spool pending, then spool approve or spool reject; run/resolve, or proposal/list to see them)`,
    { limit, bound, ...details },
  );
}
