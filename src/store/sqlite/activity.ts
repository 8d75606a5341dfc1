import type SQLite from "better-sqlite3";

/**
 * When the server's connection last wrote and last read, in a SharedArrayBuffer the checkpoint worker reads
 * (checkpoint-worker.ts): once writes have stopped, its copy of the WAL waits while reads go on (SPEC.md, the WAL).
 * Each slot holds Date.now()'s low 32 bits (one Atomics.store a write or a read: nothing next to a statement);
 * an age is the difference modulo 2^32, right for anything under 24 days.
 */
export const WROTE = 0;
export const READ = 1;

const clocks = new WeakMap<SQLite.Database, Int32Array>();

/** A clock for a connection, both slots long ago. */
export function activityClock(sqlite: SQLite.Database): Int32Array {
  const clock = new Int32Array(new SharedArrayBuffer(8));
  const longAgo = (Date.now() - 1e9) | 0;
  clock[WROTE] = longAgo;
  clock[READ] = longAgo;
  clocks.set(sqlite, clock);
  return clock;
}

/** Notes a write or a read on a connection that has a clock (a file store's). */
export function noteActivity(sqlite: SQLite.Database, slot: typeof WROTE | typeof READ): void {
  const clock = clocks.get(sqlite);
  if (clock) Atomics.store(clock, slot, Date.now() | 0);
}
