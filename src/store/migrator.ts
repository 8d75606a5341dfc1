import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Kysely, Migration, MigrationProvider, MigrationResult } from "kysely";
import { Migrator } from "kysely";
import type { SqliteStore } from "./sqlite/sqlite-store.js";
import type { Store } from "./store.js";

export const MIGRATION_TABLE = "spool_migrations";

/**
 * The folder of the schema's migrations: the top-level `migrations/` (TypeScript) when this module runs from the
 * sources (through tsx or vitest), `dist/migrations/` (the same compiled by `npm run build`, next to this module's
 * folder) when it runs from dist/ — the package ships dist/ only.
 */
export const MIGRATIONS_DIR = fileURLToPath(new URL(import.meta.url.endsWith(".ts") ? "../../migrations" : "../migrations", import.meta.url));

/**
 * One migration of the schema, written once for both databases (migrations/columns.ts declares the same shape for
 * the migrations themselves; `npm run typecheck` checks they match, test/store/migrator.test.ts).
 */
export interface SchemaMigration {
  // biome-ignore lint/suspicious/noExplicitAny: a migration sees the database as it is at its point in history, not today's typed schema
  up(db: Kysely<any>, dialect: Store["kind"]): Promise<void>;
}

/** A list of migrations by the name each is recorded under, run in the order of their names. */
export type MigrationSet = Readonly<Record<string, SchemaMigration>>;

/**
 * The schema's compiled index as this module imports it from dist/. The specifier is a variable for tsc (dist/migrations
 * is another project's output); scripts/bundle-dist.mjs makes it literal, so the bundle holds the migrations with the
 * one copy of Kysely it already has: imported from dist/, they load Kysely's ~260 files of node_modules at every start.
 */
const COMPILED_INDEX = "../migrations/index.js";

/**
 * The migrations of a folder: its `index.ts` (sources) or `index.js` (compiled), whose `SCHEMA_MIGRATIONS` lists
 * them. Loaded at run time, not imported: tsc compiles src/ and migrations/ into dist/ as two projects.
 */
export async function loadMigrations(folder: string = MIGRATIONS_DIR): Promise<MigrationSet> {
  const index = ["index.js", "index.ts"].map((file) => join(folder, file)).find((file) => existsSync(file));
  if (!index) throw new Error(`no migrations in ${folder} (index.js or index.ts): a build without dist/migrations? run \`npm run build\``);
  const compiled = folder === MIGRATIONS_DIR && index.endsWith(".js") && !import.meta.url.endsWith(".ts");
  const module = (await (compiled ? import(COMPILED_INDEX) : import(pathToFileURL(index).href))) as { SCHEMA_MIGRATIONS?: MigrationSet };
  if (!module.SCHEMA_MIGRATIONS) throw new Error(`${index} exports no SCHEMA_MIGRATIONS`);
  return module.SCHEMA_MIGRATIONS;
}

/**
 * Hands Kysely's migrator one list of migrations for both databases, each told which database it is writing:
 * SQLite's run inside the start-up transaction, PostgreSQL's inside the transaction Kysely's PostgreSQL migrator
 * holds (under its advisory lock, so servers starting together migrate once).
 */
class SchemaMigrationProvider implements MigrationProvider {
  constructor(
    private readonly store: Store,
    private readonly migrations: MigrationSet,
  ) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const dialect = this.store.kind;
    return Object.fromEntries(Object.entries(this.migrations).map(([name, m]) => [name, { up: (db) => m.up(db, dialect) }]));
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
 * Applies pending migrations in order (those of a folder, by default the schema's, or a list); returns one result
 * per migration run, throws naming the failing one. Kysely's SQLite adapter runs migrations without a transaction,
 * so start-up wraps them in one: a failure rolls back the migrations and their records together, leaving the
 * database as it was.
 */
export async function migrateToLatest(store: Store, source: string | MigrationSet = MIGRATIONS_DIR): Promise<MigrationResult[]> {
  const migrations = typeof source === "string" ? await loadMigrations(source) : source;
  const migrator = new Migrator({
    db: store.db,
    provider: new SchemaMigrationProvider(store, migrations),
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
