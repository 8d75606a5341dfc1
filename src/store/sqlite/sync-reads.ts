import type SQLite from "better-sqlite3";
import { storeError } from "../errors.js";
import type { Store } from "../store.js";
import { noteActivity, READ } from "./activity.js";
import { isBusy } from "./busy.js";
import type { SqliteStore } from "./sqlite-store.js";

/**
 * Reads on the hot paths (entry/get: its run and entry (../sync-lookups.ts), the lines; replay) that SQLite answers
 * synchronously, over statements prepared once per connection: no query
 * building, no promise per statement, no wait in Kysely's queue for the
 * connection. better-sqlite3 runs Kysely's statements synchronously too, so
 * nothing blocks longer than it did. A read goes through Kysely instead while a
 * transaction of the Kysely side is open on the connection (it would see that
 * transaction's uncommitted rows; Kysely's queue waits for it), and after the
 * database refused it as busy (Kysely's statements are retried).
 */

/** The read must go through Kysely this time. */
export const VIA_KYSELY = Symbol("via Kysely");

/** Runs `read` on the store's connection, or says why not (VIA_KYSELY); other errors are the store's typed ones. */
export function syncRead<T>(sqlite: SQLite.Database | undefined, read: () => T): T | typeof VIA_KYSELY {
  if (!sqlite || sqlite.inTransaction) return VIA_KYSELY;
  noteActivity(sqlite, READ);
  try {
    return read();
  } catch (error) {
    if (isBusy(error)) return VIA_KYSELY;
    throw storeError(error);
  }
}

/** The SQLite connection of a store, when it has one. */
export function sqliteOf(store: Store): SQLite.Database | undefined {
  return store.kind === "sqlite" ? (store as SqliteStore).sqlite : undefined;
}

/** Statements prepared once per connection and per set (`make` is the set's key). */
const prepared = new WeakMap<SQLite.Database, Map<unknown, unknown>>();

/** Sets of statements prepared so far (every connection), for tests: the reads prepare none of their own. */
export const preparedStats = { sets: 0 };

export function statementsFor<S>(sqlite: SQLite.Database, make: (sqlite: SQLite.Database) => S): S {
  let sets = prepared.get(sqlite);
  if (!sets) prepared.set(sqlite, (sets = new Map()));
  let statements = sets.get(make) as S | undefined;
  if (statements === undefined) {
    sets.set(make, (statements = make(sqlite)));
    preparedStats.sets++;
  }
  return statements;
}

/**
 * Prepares a set of statements now, when the repositories are made (after the migrations), so the first read
 * does not pay for it (~0.25 ms of the first tail after a start). On a connection whose tables are not there yet
 * (a store not migrated), the set is prepared on first use instead.
 */
export function prepareEarly(sqlite: SQLite.Database | undefined, make: (sqlite: SQLite.Database) => unknown): void {
  if (!sqlite) return;
  try {
    statementsFor(sqlite, make);
  } catch {
    // no such table yet: statementsFor prepares it on first use (and throws the store's error then, if any)
  }
}
