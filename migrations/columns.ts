import type { ColumnDefinitionBuilder, CreateTableBuilder, Kysely } from "kysely";

/** The two databases a store can be (`Store["kind"]`). */
export type Dialect = "sqlite" | "postgres";

/**
 * One migration of the schema, written once for both databases with Kysely's schema builder; `dialect` is there for
 * the few lines where SQLite and PostgreSQL really differ (each says why where it is used).
 */
export interface SchemaMigration {
  // biome-ignore lint/suspicious/noExplicitAny: a migration sees the database as it is at its point in history, not today's typed schema
  up(db: Kysely<any>, dialect: Dialect): Promise<void>;
}

/** The column types that differ between the two databases; every other column is `integer` or `text` on both. */
export function types(dialect: Dialect) {
  return {
    // SQLite's INTEGER holds 64 bits; PostgreSQL's holds 32, so ids, times (milliseconds) and byte or line counters
    // are BIGINT there. Small values (statuses, turns, 0/1 flags) stay INTEGER on both.
    big: dialect === "postgres" ? "bigint" : "integer",
    // PostgreSQL has no BLOB type; BYTEA is its byte string.
    bytes: dialect === "postgres" ? "bytea" : "blob",
  } as const;
}

/**
 * A table's own id: on SQLite INTEGER PRIMARY KEY is the rowid, given on insert; PostgreSQL needs an identity
 * column for the same (BY DEFAULT, so rows inserted with an explicit id, as tests and copies do, are accepted).
 */
export function id(dialect: Dialect) {
  return (column: ColumnDefinitionBuilder) => (dialect === "postgres" ? column.primaryKey().generatedByDefaultAsIdentity() : column.primaryKey());
}

/** A reference to `table.id`, the row going with it (`notNull` unless the reference is optional). */
export function owner(target: string, notNull = true) {
  return (column: ColumnDefinitionBuilder) => {
    const c = column.references(`${target}.id`).onDelete("cascade");
    return notNull ? c.notNull() : c;
  };
}

/** NOT NULL, the most common column modifier here. */
export const required = (column: ColumnDefinitionBuilder) => column.notNull();

/**
 * The columns of a delivery retried until its receiver takes it, claimed with a lease so one server at a time sends
 * it (notify_outbox in 014, notify_deliveries in 015): attempts so far, when next, claimed until, the last error, made when.
 */
export function retried<TB extends string, C extends string>(table: CreateTableBuilder<TB, C>, dialect: Dialect) {
  const t = types(dialect);
  return table
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("next_at", t.big, required)
    .addColumn("claimed_until", t.big, (c) => c.notNull().defaultTo(0))
    .addColumn("last_error", "text")
    .addColumn("created_at", t.big, required);
}
