import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import type { MigrationSet } from "../../src/store/migrator.js";
import type { PostgresStore } from "../../src/store/postgres/postgres.js";
import type { SqliteStore, Store } from "../../src/store/sqlite/database.js";

/**
 * The .sql migrations the schema was written as until it became TypeScript (migrations/), one folder per
 * database, kept only so tests can make a database the way servers of then made it.
 */
export const LEGACY_SQL_DIR = fileURLToPath(new URL("../fixtures/sql-migrations", import.meta.url));

/** The legacy .sql files as migrations under their own names (which the TypeScript ones keep), up to `before` excluded. */
export function legacySqlMigrations(store: Store, before = "999"): MigrationSet {
  const folder = store.kind === "postgres" ? join(LEGACY_SQL_DIR, "postgres") : LEGACY_SQL_DIR;
  const files = readdirSync(folder)
    .filter((f) => f.endsWith(".sql") && f < before)
    .sort();
  return Object.fromEntries(
    files.map((file) => {
      const text = readFileSync(join(folder, file), "utf8");
      // As the old provider ran them: better-sqlite3's exec() for SQLite's several statements, one multi-statement query on PostgreSQL.
      const up = async (db: Parameters<MigrationSet[string]["up"]>[0]) => {
        if (store.kind === "sqlite") (store as SqliteStore).sqlite.exec(text);
        else await sql.raw(text).execute(db);
      };
      return [file, { up }];
    }),
  );
}

export interface ColumnShape {
  name: string;
  type: string;
  notNull: boolean;
  default: string | null;
  primaryKey: boolean;
}

/** A database's schema as both databases can describe it: tables and their columns, indexes, foreign keys. */
export interface SchemaShape {
  tables: Record<string, ColumnShape[]>;
  /** `table name (columns) unique? partial?`, primary keys left out (they are the columns' `primaryKey`). */
  indexes: string[];
  /** `table (columns) -> table (columns) on delete ACTION`. */
  foreignKeys: string[];
}

// Kysely's own bookkeeping is not the schema.
const isOwn = (table: string) => !table.startsWith("spool_migrations");

function indexLine(table: string, name: string, columns: string[], unique: boolean, partial: boolean): string {
  return `${table} ${name} (${columns.join(", ")})${unique ? " unique" : ""}${partial ? " partial" : ""}`;
}

/** SQLite's schema through its pragmas. */
export function sqliteSchema(store: SqliteStore): SchemaShape {
  const db = store.sqlite;
  const tables = (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[]
  ).filter(isOwn);
  const shape: SchemaShape = { tables: {}, indexes: [], foreignKeys: [] };
  for (const table of tables) {
    const columns = db.pragma(`table_info(${table})`) as { name: string; type: string; notnull: number; dflt_value: string | null; pk: number }[];
    shape.tables[table] = columns.map((c) => ({
      name: c.name,
      type: c.type.toUpperCase(),
      notNull: c.notnull === 1,
      default: c.dflt_value,
      primaryKey: c.pk > 0,
    }));
    const indexes = db.pragma(`index_list(${table})`) as { name: string; unique: number; origin: string; partial: number }[];
    for (const index of indexes) {
      if (index.origin === "pk") continue;
      const columns = (db.pragma(`index_info(${index.name})`) as { seqno: number; name: string | null }[])
        .sort((a, b) => a.seqno - b.seqno)
        .map((c) => c.name ?? "?");
      shape.indexes.push(indexLine(table, index.name, columns, index.unique === 1, index.partial === 1));
    }
    const keys = db.pragma(`foreign_key_list(${table})`) as { id: number; seq: number; table: string; from: string; to: string; on_delete: string }[];
    for (const id of new Set(keys.map((k) => k.id))) {
      const parts = keys.filter((k) => k.id === id).sort((a, b) => a.seq - b.seq);
      shape.foreignKeys.push(
        `${table} (${parts.map((k) => k.from).join(", ")}) -> ${parts[0]!.table} (${parts.map((k) => k.to).join(", ")}) on delete ${parts[0]!.on_delete}`,
      );
    }
  }
  shape.indexes.sort();
  shape.foreignKeys.sort();
  return shape;
}

/** PostgreSQL's schema (the public one) through its catalogues. */
export async function postgresSchema(store: PostgresStore): Promise<SchemaShape> {
  const q = async <T>(text: string) => (await store.pool.query(text)).rows as T[];
  const shape: SchemaShape = { tables: {}, indexes: [], foreignKeys: [] };
  const columns = await q<{ table_name: string; column_name: string; data_type: string; is_nullable: string; column_default: string | null; pk: boolean }>(`
    SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, c.column_default,
      EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
              WHERE i.indrelid = format('%I', c.table_name)::regclass AND i.indisprimary AND a.attname = c.column_name) AS pk
    FROM information_schema.columns c
    WHERE c.table_schema = 'public'
    ORDER BY c.table_name, c.ordinal_position`);
  for (const c of columns) {
    if (!isOwn(c.table_name)) continue;
    (shape.tables[c.table_name] ??= []).push({
      name: c.column_name,
      type: c.data_type.toUpperCase(),
      notNull: c.is_nullable === "NO",
      default: c.column_default,
      primaryKey: c.pk,
    });
  }
  const indexes = await q<{ table_name: string; index_name: string; columns: string[]; unique: boolean; partial: boolean }>(`
    SELECT t.relname AS table_name, x.relname AS index_name, i.indisunique AS unique, i.indpred IS NOT NULL AS partial,
      ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k) AS columns
    FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = 'public' AND NOT i.indisprimary`);
  for (const i of indexes) if (isOwn(i.table_name)) shape.indexes.push(indexLine(i.table_name, i.index_name, i.columns, i.unique, i.partial));
  const keys = await q<{ line: string }>(`
    SELECT format('%s (%s) -> %s (%s) on delete %s', c.conrelid::regclass,
      (SELECT string_agg(a.attname, ', ' ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
      c.confrelid::regclass,
      (SELECT string_agg(a.attname, ', ' ORDER BY k.n) FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, n)
         JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum),
      CASE c.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'r' THEN 'RESTRICT' ELSE 'NO ACTION' END) AS line
    FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
    WHERE c.contype = 'f' AND n.nspname = 'public'`);
  shape.foreignKeys = keys.map((k) => k.line);
  shape.indexes.sort();
  shape.foreignKeys.sort();
  return shape;
}

/** PostgreSQL's CHECK constraints, by name: SQLite keeps its own only in the CREATE TABLE text. */
export async function postgresChecks(store: PostgresStore): Promise<string[]> {
  const { rows } = await store.pool.query(`
    SELECT format('%s %s %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid)) AS line
    FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
    WHERE c.contype = 'c' AND n.nspname = 'public' ORDER BY 1`);
  return rows.map((r: { line: string }) => r.line);
}

/**
 * One schema in terms both databases share, to compare SQLite's with PostgreSQL's: types by family (SQLite's INTEGER
 * holds what PostgreSQL's INTEGER and BIGINT hold; BLOB is BYTEA), a primary key column not null (SQLite's rowid
 * alias reports nullable but never is), defaults without PostgreSQL's casts, columns by name (PostgreSQL adds a
 * column at the end where SQLite rebuilds the table, as allow_rules in 009 and 010; queries name their columns),
 * indexes without their names (SQLite names those of UNIQUE constraints itself).
 */
export function normalised(shape: SchemaShape): SchemaShape {
  const type = (t: string) => ({ BIGINT: "INTEGER", BYTEA: "BLOB" })[t] ?? t;
  const tables = Object.fromEntries(
    Object.entries(shape.tables).map(([table, columns]) => [
      table,
      columns
        .map((c) => ({
          ...c,
          type: type(c.type),
          notNull: c.notNull || c.primaryKey,
          default: c.default?.replace(/::[a-z ]+$/, "") ?? null,
        }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    ]),
  );
  const indexes = shape.indexes.map((line) => line.replace(/^(\S+) \S+ /, "$1 ")).sort();
  return { tables, indexes, foreignKeys: shape.foreignKeys };
}

/**
 * The CHECK constraints of one schema as `table.column in (values)`, the one form this schema's checks take; SQLite
 * keeps them only in its CREATE TABLE text, PostgreSQL rewrites them as `= ANY (ARRAY[…])`.
 */
export function sqliteChecks(store: SqliteStore): string[] {
  const tables = store.sqlite.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as {
    name: string;
    sql: string;
  }[];
  const checks: string[] = [];
  for (const { name, sql } of tables)
    for (const [, column, values] of sql.matchAll(/check\s*\(\s*"?(\w+)"?\s+in\s*\(([^)]*)\)\s*\)/gi)) checks.push(checkLine(name, column!, values!));
  return checks.sort();
}

export async function postgresCheckLines(store: PostgresStore): Promise<string[]> {
  const checks: string[] = [];
  for (const line of await postgresChecks(store)) {
    const [, table, column, values] = /^(\S+) \S+ CHECK \(\(?(\w+) = ANY \(ARRAY\[(.*)\]\)\)\)?$/.exec(line) ?? [];
    if (!table) throw new Error(`a CHECK of another form than column IN (values): ${line}`);
    checks.push(checkLine(table, column!, values!));
  }
  return checks.sort();
}

function checkLine(table: string, column: string, values: string): string {
  return `${table}.${column} in (${[...values.matchAll(/'([^']*)'/g)].map((m) => m[1]).join(", ")})`;
}
