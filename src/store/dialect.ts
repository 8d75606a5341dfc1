import { type Kysely, PostgresAdapter, type RawBuilder, sql } from "kysely";

/**
 * The few SQL expressions SQLite and PostgreSQL spell differently, chosen by
 * the database a query runs on. Everything else the repositories write is
 * portable Kysely.
 */

// biome-ignore lint/suspicious/noExplicitAny: any database schema
export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/** The text of JSON attribute `key` in a TEXT column holding a JSON object. */
// biome-ignore lint/suspicious/noExplicitAny: any database schema
export function jsonText(db: Kysely<any>, column: string, key: string): RawBuilder<string> {
  return isPostgres(db) ? sql<string>`(${sql.ref(column)}::jsonb ->> ${key})` : sql<string>`json_extract(${sql.ref(column)}, ${`$.${key}`})`;
}

/** The JSON object in `column` with `key` set to `value` (other keys kept), as text. */
// biome-ignore lint/suspicious/noExplicitAny: any database schema
export function jsonSet(db: Kysely<any>, column: string, key: string, value: unknown): RawBuilder<string> {
  const json = JSON.stringify(value ?? null);
  return isPostgres(db)
    ? sql<string>`jsonb_set(${sql.ref(column)}::jsonb, ${`{${key}}`}::text[], ${json}::jsonb, true)::text`
    : sql<string>`json_set(${sql.ref(column)}, ${`$.${key}`}, json(${json}))`;
}

/**
 * The JSON object in `column` with `values`' keys written over it (shallow; `values` holds no null, which SQLite's
 * json_patch would take for a removal), as text.
 */
// biome-ignore lint/suspicious/noExplicitAny: any database schema
export function jsonMerge(db: Kysely<any>, column: string, values: Record<string, unknown>): RawBuilder<string> {
  const json = JSON.stringify(values);
  return isPostgres(db) ? sql<string>`(${sql.ref(column)}::jsonb || ${json}::jsonb)::text` : sql<string>`json_patch(${sql.ref(column)}, ${json})`;
}

/** `column` matches a glob (`*` any run, `?` one character, `[…]` a class, `[!…]` its complement), case-sensitive. */
// biome-ignore lint/suspicious/noExplicitAny: any database schema
export function globMatch(db: Kysely<any>, column: string, pattern: string): RawBuilder<boolean> {
  return isPostgres(db) ? sql<boolean>`${sql.ref(column)} ~ ${globToRegex(pattern)}` : sql<boolean>`${sql.ref(column)} glob ${pattern}`;
}

/** SQLite's GLOB as an anchored POSIX regular expression. */
export function globToRegex(glob: string): string {
  let out = "^";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") out += ".*";
    else if (c === "?") out += ".";
    else if (c === "[") {
      const close = glob.indexOf("]", i + 2);
      if (close === -1) {
        out += "\\[";
        continue;
      }
      let body = glob.slice(i + 1, close);
      const negate = body.startsWith("!") || body.startsWith("^");
      if (negate) body = body.slice(1);
      out += `[${negate ? "^" : ""}${body.replace(/\\/g, "\\\\")}]`;
      i = close;
    } else out += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return `${out}$`;
}
