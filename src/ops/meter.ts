import type { CoreObserver, DecisionFacts } from "../core/observer.js";
import type { ProjectRef } from "../rpc/connection-context.js";
import type { EntryRow, RunRow } from "../store/schema.js";

/**
 * A histogram's running figures, kept as plain numbers: an observation is a few comparisons and additions (no
 * allocation, no label lookup); /metrics turns them into Prometheus's cumulative buckets when it is scraped.
 */
export class Buckets {
  /** Observations per bucket (not cumulative): counts[i] holds those ≤ bounds[i] and > bounds[i-1]. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

/** Seconds for work measured in milliseconds (an append's commit, a watcher's delivery, a checkpoint's hold). */
export const FAST_BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Seconds from an accept to its runner's start: a free runner's few milliseconds, or a wait in a busy pool's queue. */
export const CLAIM_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** At most this many pools get a claim-latency histogram of their own; the rest count as "other" (labels keep few values). */
export const MAX_POOL_LABELS = 20;
/** Seconds a person takes to decide. */
export const DECISION_BOUNDS = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 14400, 86400];

/** Who decided, as the metric's `by` label: a person (a connection), a rule, run/abort, the deadline, or a revocation of the proposer. */
export type DecidedBy = "person" | "rule" | "abort" | "deadline" | "revoked";

/** The counts /metrics reports that only the core sees happen; everything else is read when scraped. */
export class Meter implements CoreObserver {
  streamBytes = 0;
  streamChunks = 0;
  readonly append = new Buckets(FAST_BOUNDS);
  readonly watcherLag = new Buckets(FAST_BOUNDS);
  readonly checkpointHold = new Buckets(FAST_BOUNDS);
  readonly proposalWait = new Buckets(DECISION_BOUNDS);
  /** Decisions by `${outcome} ${by}`. */
  readonly decisions = new Map<string, number>();
  /** Per pool (its queue's key), seconds from a command's accept to its runner's start, started on this server's runners. */
  readonly claims = new Map<string, Buckets>();

  proposed(): void {}

  resolved(_project: ProjectRef, _run: RunRow, log: EntryRow, details: DecisionFacts): void {
    const by: DecidedBy = details.resolver.kind === "connection" ? "person" : details.resolver.kind;
    const key = `${details.decision} ${by}`;
    this.decisions.set(key, (this.decisions.get(key) ?? 0) + 1);
    this.proposalWait.observe(Math.max(0, Date.now() - log.created_at) / 1000);
  }

  dispatched(): void {}

  /** A command of a pool (or of a runner with a capacity) started: how long after its accept (its wait in the queue included). */
  started(log: EntryRow): void {
    const { queue, acceptedAt } = poolOf(log);
    if (queue === null || acceptedAt === null) return;
    const label = this.claims.has(queue) || this.claims.size < MAX_POOL_LABELS ? queue : "other";
    let buckets = this.claims.get(label);
    if (!buckets) this.claims.set(label, (buckets = new Buckets(CLAIM_BOUNDS)));
    buckets.observe(Math.max(0, Date.now() - acceptedAt) / 1000);
  }

  finished(): void {}

  appended(bytes: number, seconds: number): void {
    this.streamBytes += bytes;
    this.streamChunks++;
    this.append.observe(seconds);
  }

  delivered(seconds: number): void {
    this.watcherLag.observe(seconds);
  }

  /** The store's checkpoint worker held the appends for `ms` milliseconds. */
  held(ms: number): void {
    this.checkpointHold.observe(ms / 1000);
  }
}

/** The queue a command was accepted into (its pool) and when, from its log entry; nulls when it had none. */
function poolOf(log: EntryRow): { queue: string | null; acceptedAt: number | null } {
  // Only a command with a queue pays for reading its attributes (most have none: the key is looked for first).
  if (!log.attributes.includes('"queue"')) return { queue: null, acceptedAt: null };
  const a = JSON.parse(log.attributes) as { queue?: unknown; acceptedAt?: unknown };
  return { queue: typeof a.queue === "string" ? a.queue : null, acceptedAt: typeof a.acceptedAt === "number" ? a.acceptedAt : null };
}

/**
 * The core's one observer: the meter alone, or the meter and the tracer. A chunk's steps (appended, delivered) go
 * to the meter only, bound once: a tracer adds nothing to the stream's path, only to a producer's few steps.
 */
export function observeAll(meter: Meter, tracer: CoreObserver | null): CoreObserver {
  if (!tracer) return meter;
  return {
    proposed: (project, run, log, traceparent) => {
      meter.proposed();
      tracer.proposed(project, run, log, traceparent);
    },
    resolved: (project, run, log, details) => {
      meter.resolved(project, run, log, details);
      tracer.resolved(project, run, log, details);
    },
    dispatched: (log, runner) => tracer.dispatched(log, runner),
    started: (log, runner) => {
      meter.started(log);
      tracer.started(log, runner);
    },
    finished: (log, channels, status, outcome) => tracer.finished(log, channels, status, outcome),
    appended: meter.appended.bind(meter),
    delivered: meter.delivered.bind(meter),
  };
}
