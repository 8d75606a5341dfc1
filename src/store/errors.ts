import { StorageFull } from "../protocol/errors.js";

export { StorageFull };

/**
 * Typed store errors: callers branch on these, never on a driver's message
 * text (which differs between SQLite and PostgreSQL).
 */
export class UniqueViolation extends Error {
  override readonly name = "UniqueViolation";
  constructor(
    /** The table whose unique constraint refused the row. */
    readonly table: string,
    override readonly cause: unknown,
  ) {
    super(`unique constraint of ${table} violated`);
  }
}

/** SQLite reports a failed UNIQUE constraint with these extended codes; PostgreSQL with SQLSTATE 23505. */
const UNIQUE_CODES = new Set(["SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY", "23505"]);

/** Runs a write and turns the driver's unique-constraint failure into a UniqueViolation. */
export async function uniquely<T>(table: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (UNIQUE_CODES.has((error as { code?: string } | null)?.code ?? "")) throw new UniqueViolation(table, error);
    throw error;
  }
}

/** Codes of a write that found no room: SQLite's (ENOSPC, or `max_page_count` reached), PostgreSQL's disk_full (53100). */
const FULL_CODES = new Set(["SQLITE_FULL", "53100"]);

/** The typed store error for a driver error, or the error itself. */
export function storeError(error: unknown): unknown {
  if (error instanceof StorageFull) return error;
  if (FULL_CODES.has((error as { code?: string } | null)?.code ?? "")) return new StorageFull(error);
  return error;
}
