import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Migration, type MigrationProvider, type MigrationResult, Migrator } from "kysely";
import type { Store } from "./database.js";

export const MIGRATION_TABLE = "spool_migrations";
const FILE_PATTERN = /^\d{3,}_[a-z0-9_-]+\.sql$/i;

/**
 * Kysely's file provider only loads .js/.ts modules; this one runs plain .sql
 * files with better-sqlite3's exec(), inside the start-up transaction.
 */
export class SqlFileMigrationProvider implements MigrationProvider {
  constructor(
    private readonly store: Store,
    private readonly folder: string,
  ) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const migrations: Record<string, Migration> = {};
    const files = readdirSync(this.folder)
      .filter((f) => FILE_PATTERN.test(f))
      .sort();
    for (const file of files) {
      const sql = readFileSync(join(this.folder, file), "utf8");
      migrations[file] = {
        up: async () => {
          this.store.sqlite.exec(sql);
        },
      };
    }
    return migrations;
  }
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
  store.sqlite.exec("BEGIN IMMEDIATE");
  let outcome: Awaited<ReturnType<Migrator["migrateToLatest"]>>;
  try {
    outcome = await migrator.migrateToLatest();
  } catch (error) {
    outcome = { error };
  }
  const { error, results = [] } = outcome;
  store.sqlite.exec(error ? "ROLLBACK" : "COMMIT");
  if (error) {
    const failed = results.find((r) => r.status === "Error");
    throw new MigrationFailedError(failed?.migrationName ?? "(unknown)", error);
  }
  return results;
}
