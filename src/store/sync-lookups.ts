import type SQLite from "better-sqlite3";
import type { PendingCounts } from "./entries.js";
import * as entries from "./entries.js";
import * as runs from "./runs.js";
import type { EntryRow, RunRow } from "./schema.js";
import { prepareEarly, sqliteOf, statementsFor, syncRead, VIA_KYSELY } from "./sqlite/sync-reads.js";
import type { Store } from "./store.js";

/**
 * The lookups of one run or entry that nearly every call makes, synchronous on SQLite (sqlite/sync-reads.ts): the same rows
 * as the repositories' own queries, which answer instead on PostgreSQL and whenever the read must go through Kysely.
 */

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
