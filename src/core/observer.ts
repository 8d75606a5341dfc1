import type { ProjectRef } from "../rpc/connection-context.js";
import type { EntryRow, RunRow } from "../store/schema.js";
import type { Outcome } from "./producers/outcome.js";

/** Where a connection keeps the traceparent its `initialize` sent (ConnectionHandle.state). */
export const CONNECTION_TRACEPARENT = Symbol.for("spool.traceparent");

/** What the observer is told of a decision (a part of `run/resolved`). */
export interface DecisionFacts {
  decision: "accept" | "reject";
  runner: string | null;
  resolvedBy: string;
  resolver: { kind: "connection" | "rule" | "abort" | "deadline" | "revoked" };
  /** The channels an accept opened. */
  channels: readonly { channel: number; path: string }[];
}

/**
 * What the server's metrics and traces (src/ops) are told of a producer's life, by the core, after the store write
 * of each step. Every method is O(1) and must not throw or wait: it runs on the lifecycle's path.
 */
export interface CoreObserver {
  /** A proposal was stored (before a rule may accept it). `traceparent`: the caller's W3C trace context, if it sent one. */
  proposed(project: ProjectRef, run: RunRow, log: EntryRow, traceparent: string | undefined): void;
  /** It was accepted or rejected (`log` is the row after the decision, `created_at` still the proposal's). */
  resolved(project: ProjectRef, run: RunRow, log: EntryRow, details: DecisionFacts): void;
  /** An accepted proposal was sent to its runner (not for runner "self", whose owner runs it itself). */
  dispatched(log: EntryRow, runner: string): void;
  /** Its owner started it. */
  started(log: EntryRow, runner: string): void;
  /** Its channels ended. */
  finished(log: EntryRow, channels: readonly EntryRow[], status: number, outcome: Outcome): void;
  /** One chunk of output was stored: its size, and the seconds the append took. */
  appended(bytes: number, seconds: number): void;
  /** A stored chunk went to the channel's live watchers, `seconds` after it arrived. */
  delivered(seconds: number): void;
}
