import type SQLite from "better-sqlite3";
import { noteActivity, READ } from "./activity.js";
import { isBusy } from "./busy.js";
import type { PendingCounts } from "./entries.js";
import * as entries from "./entries.js";
import { storeError } from "./errors.js";
import * as runs from "./runs.js";
import type { EntryRow, RunRow } from "./schema.js";
import type { SqliteStore, Store } from "./store.js";

/**
 * Reads on the hot paths (entry/get: its run and entry, the lines; replay) that SQLite answers
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

const entryStatements = (sqlite: SQLite.Database) => ({
  byPath: sqlite.prepare<[number, string], EntryRow>('SELECT * FROM "entries" WHERE "run_id" = ? AND "path" = ?'),
  byId: sqlite.prepare<[number], EntryRow>('SELECT * FROM "entries" WHERE "id" = ?'),
  // Both counts from migration 021's kept rows (no row: none waits), the principal's for its whole share (entries.ts countPending).
  pending: sqlite.prepare<[{ run: string; name: string }], PendingCounts>(
    `SELECT coalesce((SELECT "n" FROM "pending_counts" WHERE "scope" = 'run' AND "key" = @run), 0) AS run, coalesce((SELECT "n" FROM "pending_counts" WHERE "scope" = 'principal' AND "key" = @name), 0) + coalesce((SELECT sum("c"."n") FROM "principals" AS "p" JOIN "pending_counts" AS "c" ON "c"."scope" = 'principal' AND "c"."key" = "p"."name" WHERE "p"."revoked_at" IS NULL AND "p"."name" <> @name AND "p"."share" = (SELECT "share" FROM "principals" WHERE "name" = @name AND "revoked_at" IS NULL)), 0) AS principal, (SELECT "share" FROM "principals" WHERE "name" = @name AND "revoked_at" IS NULL) AS share`,
  ),
});

/** entries.ts's lookups of one entry, synchronous on SQLite (the same rows). */
export function entryReads(store: Store) {
  const { db } = store;
  const sqlite = sqliteOf(store);
  prepareEarly(sqlite, entryStatements);
  return {
    findEntry(runId: number, path: string): Promise<EntryRow | undefined> {
      const row = syncRead(sqlite, () => statementsFor(sqlite!, entryStatements).byPath.get(runId, path));
      return row === VIA_KYSELY ? entries.findEntry(db, runId, path) : Promise.resolve(row);
    },
    findEntryById(id: number): Promise<EntryRow | undefined> {
      const row = syncRead(sqlite, () => statementsFor(sqlite!, entryStatements).byId.get(id));
      return row === VIA_KYSELY ? entries.findEntryById(db, id) : Promise.resolve(row);
    },
    countPending(runId: number, principal: string): Promise<PendingCounts> {
      const row = syncRead(sqlite, () => statementsFor(sqlite!, entryStatements).pending.get({ run: String(runId), name: principal })!);
      return row === VIA_KYSELY ? entries.countPending(db, runId, principal) : Promise.resolve(row);
    },
  };
}

const runStatements = (sqlite: SQLite.Database) => ({
  byAlias: sqlite.prepare<[number, string], RunRow>('SELECT * FROM "runs" WHERE "project_id" = ? AND "alias" = ?'),
});

/** runs.ts's lookup of a run by alias (every call naming a run makes it), synchronous on SQLite (the same row). */
export function runReads(store: Store) {
  const { db } = store;
  const sqlite = sqliteOf(store);
  prepareEarly(sqlite, runStatements);
  return {
    findRun(projectId: number, alias: string): Promise<RunRow | undefined> {
      const row = syncRead(sqlite, () => statementsFor(sqlite!, runStatements).byAlias.get(projectId, alias));
      return row === VIA_KYSELY ? runs.findRun(db, projectId, alias) : Promise.resolve(row);
    },
  };
}
