import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { type AppendOutcome, countNewlines } from "./chunks.js";
import type { Store } from "./database.js";
import { lineCount } from "./entries.js";
import { storeError } from "./errors.js";
import type { Database, EntryRow } from "./schema.js";

export interface PostgresStoreOptions {
  /** Connections in the pool. */
  poolSize?: number;
}

/** PostgreSQL types read as JavaScript numbers: BIGINT (ids, times, counters) and NUMERIC (sums). Both stay below 2^53 here. */
const NUMERIC_TYPES = [20, 1700];

/** The URL without its password, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "postgres://…";
  }
}

export interface PostgresStore extends Store {
  readonly kind: "postgres";
  readonly pool: pg.Pool;
}

/**
 * Opens a PostgreSQL store through kysely's PostgreSQL dialect. Rows read as
 * they do from SQLite (numbers, Buffers, 0/1 flags), so the repositories are
 * the same code; appends are group-committed like SQLite's, each one a row
 * lock on its entry, one INSERT and one UPDATE: O(chunk), whatever the entry holds.
 */
export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
  const types = {
    getTypeParser: (oid: number, format?: "text" | "binary") =>
      NUMERIC_TYPES.includes(oid) ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as "text"),
  };
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10, types: types as pg.CustomTypesConfig });
  // A dropped idle connection must not crash the server; the pool replaces it.
  pool.on("error", () => undefined);
  // Fail at start-up, with the server's own message, when the database cannot be reached.
  const probe = await pool.connect().catch(async (error: unknown) => {
    await pool.end().catch(() => undefined);
    throw new Error(`Cannot connect to PostgreSQL at ${redactUrl(url)}: ${error instanceof Error ? error.message : String(error)}`);
  });
  probe.release();
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const appends = new AppendBatcher(pool);
  let closed = false;
  return {
    kind: "postgres",
    db,
    pool,
    location: redactUrl(url),
    appendChunk: (entryId, data, seq, open) => appends.append(entryId, data, seq, open),
    async close() {
      if (closed) return;
      closed = true;
      await appends.drain();
      // destroy() ends the pool once pending queries finish.
      await db.destroy();
    },
  };
}

interface Pending {
  entryId: number;
  data: Buffer;
  seq: number | undefined;
  open: number;
  resolve(outcome: AppendOutcome): void;
  reject(error: unknown): void;
}

/** At most this many appends share one transaction. */
const MAX_BATCH = 256;

/**
 * Group commit for PostgreSQL: appends that arrive while a transaction is on
 * its way share the next one. One batch at a time, so chunks of one entry
 * are written in the order they came.
 */
class AppendBatcher {
  #pending: Pending[] = [];
  #running: Promise<void> | null = null;

  constructor(private readonly pool: pg.Pool) {}

  append(entryId: number, data: Buffer, seq: number | undefined, open: number): Promise<AppendOutcome> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ entryId, data, seq, open, resolve, reject });
      this.#running ??= this.#loop();
    });
  }

  async drain(): Promise<void> {
    await this.#running;
  }

  async #loop(): Promise<void> {
    // Let the appends of this turn of the event loop join the first batch.
    await new Promise((r) => setImmediate(r));
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, MAX_BATCH);
      try {
        const outcomes = await this.#write(batch);
        for (const [i, item] of batch.entries()) item.resolve(outcomes[i]!);
      } catch (error) {
        // The whole batch rolled back: every writer in it gets the error and may retry its seq.
        const typed = storeError(error);
        for (const item of batch) item.reject(typed);
      }
    }
    this.#running = null;
  }

  async #write(batch: Pending[]): Promise<AppendOutcome[]> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const outcomes: AppendOutcome[] = [];
      for (const item of batch) outcomes.push(await appendOne(client, item));
      await client.query("COMMIT");
      return outcomes;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }
}

async function appendOne(client: pg.PoolClient, { entryId, data, seq, open }: Pending): Promise<AppendOutcome> {
  // The row lock orders appends to one entry across servers sharing the database.
  const { rows } = await client.query<EntryRow>("SELECT * FROM entries WHERE id = $1 FOR UPDATE", [entryId]);
  const entry = rows[0];
  if (!entry) throw new Error(`entry ${entryId} vanished`);
  if (seq !== undefined && seq <= entry.last_seq) {
    // A retry is acknowledged only with the bytes already stored under its seq (one chunk read, O(chunk)).
    const previous = await client.query<{ data: Buffer }>("SELECT data FROM chunks WHERE entry_id = $1 AND seq = $2", [entryId, seq]);
    if (!previous.rows[0]?.data.equals(data)) return { kind: "mismatch", seq };
    return { kind: "duplicate", seq, bytes: entry.bytes, lines: lineCount(entry), entry };
  }
  if (entry.status !== open) return { kind: "closed", status: entry.status };
  const next = entry.last_seq + 1;
  if (seq !== undefined && seq !== next) return { kind: "gap", expected: next };
  const newlines = countNewlines(data);
  await client.query("INSERT INTO chunks (entry_id, seq, byte_offset, line_offset, newlines, data) VALUES ($1, $2, $3, $4, $5, $6)", [
    entryId,
    next,
    entry.bytes,
    entry.newlines,
    newlines,
    data,
  ]);
  const updated: EntryRow = {
    ...entry,
    bytes: entry.bytes + data.length,
    newlines: entry.newlines + newlines,
    ends_with_newline: data.length > 0 ? Number(data[data.length - 1] === 10) : entry.ends_with_newline,
    last_seq: next,
    updated_at: Date.now(),
  };
  await client.query("UPDATE entries SET bytes = $1, newlines = $2, ends_with_newline = $3, last_seq = $4, updated_at = $5 WHERE id = $6", [
    updated.bytes,
    updated.newlines,
    updated.ends_with_newline,
    next,
    updated.updated_at,
    entryId,
  ]);
  return { kind: "appended", seq: next, bytes: updated.bytes, lines: lineCount(updated), entry: updated };
}
