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

/** SQLite reports a failed UNIQUE constraint with this extended code. */
const SQLITE_UNIQUE = new Set(["SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"]);

/** Runs a write and turns the driver's unique-constraint failure into a UniqueViolation. */
export async function uniquely<T>(table: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (SQLITE_UNIQUE.has((error as { code?: string } | null)?.code ?? "")) throw new UniqueViolation(table, error);
    throw error;
  }
}
