import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Migration, type MigrationProvider, type MigrationResult, Migrator, sql } from "kysely";
import type { SqliteStore, Store } from "./database.js";

export const MIGRATION_TABLE = "spool_migrations";
const FILE_PATTERN = /^\d{3,}_[a-z0-9_-]+\.sql$/i;

/**
 * Kysely's file provider only loads .js/.ts modules; this one runs plain .sql
 * files: SQLite's from `folder` with better-sqlite3's exec(), inside the
 * start-up transaction; PostgreSQL's twins from `folder/postgres` as one
 * multi-statement query each, inside the transaction Kysely's PostgreSQL
 * migrator holds (under its advisory lock, so servers starting together
 * migrate once).
 */
export class SqlFileMigrationProvider implements MigrationProvider {
  constructor(
    private readonly store: Store,
    private readonly folder: string,
  ) {}

  /** The folder holding this store's migrations. */
  static folderFor(store: Store, folder: string): string {
    return store.kind === "postgres" ? join(folder, "postgres") : folder;
  }

  async getMigrations(): Promise<Record<string, Migration>> {
    const migrations: Record<string, Migration> = {};
    const folder = SqlFileMigrationProvider.folderFor(this.store, this.folder);
    for (const file of migrationFiles(folder)) {
      const text = readFileSync(join(folder, file), "utf8");
      const store = this.store;
      migrations[file] = {
        up: async (db) => {
          if (store.kind === "sqlite") (store as SqliteStore).sqlite.exec(text);
          else await sql.raw(text).execute(db);
        },
      };
    }
    return migrations;
  }
}

/** The migration files of a folder, in the order they run. */
export function migrationFiles(folder: string): string[] {
  return readdirSync(folder)
    .filter((f) => FILE_PATTERN.test(f))
    .sort();
}

export class MigrationFailedError extends Error {
  constructor(
    readonly file: string,
    override readonly cause: unknown,
  ) {
    super(`Migration ${file} failed: ${cause instanceof Error ? cause.message : String(cause)}; the database was left as it was`);
  }
}

/**
 * Applies pending migrations in order; returns one result per migration run,
 * throws naming the failing file. Kysely's SQLite adapter runs migrations
 * without a transaction, so start-up wraps them in one: a failure rolls back
 * the files and their records together, leaving the database as it was.
 */
export async function migrateToLatest(store: Store, folder: string): Promise<MigrationResult[]> {
  const migrator = new Migrator({
    db: store.db,
    provider: new SqlFileMigrationProvider(store, folder),
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: `${MIGRATION_TABLE}_lock`,
  });
  if (store.kind === "postgres") {
    // Kysely runs PostgreSQL's migrations in one transaction of its own: a failure leaves the database as it was.
    const { error, results = [] } = await migrator.migrateToLatest();
    if (error) throw new MigrationFailedError(results.find((r) => r.status === "Error")?.migrationName ?? "(unknown)", error);
    return results;
  }
  const sqlite = (store as SqliteStore).sqlite;
  sqlite.exec("BEGIN IMMEDIATE");
  let outcome: Awaited<ReturnType<Migrator["migrateToLatest"]>>;
  try {
    outcome = await migrator.migrateToLatest();
  } catch (error) {
    outcome = { error };
  }
  const { error, results = [] } = outcome;
  sqlite.exec(error ? "ROLLBACK" : "COMMIT");
  if (error) {
    const failed = results.find((r) => r.status === "Error");
    throw new MigrationFailedError(failed?.migrationName ?? "(unknown)", error);
  }
  return results;
}
