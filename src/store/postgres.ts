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
      const outcomes = await writeBatch(client, batch);
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

/**
 * One batch in a fixed number of round trips, whatever its size: lock its
 * entries (in id order, so two servers never deadlock), decide every append
 * in memory, then one INSERT of all new chunks and one UPDATE of all counters.
 */
async function writeBatch(client: pg.PoolClient, batch: Pending[]): Promise<AppendOutcome[]> {
  const ids = [...new Set(batch.map((b) => b.entryId))].sort((a, b) => a - b);
  const { rows } = await client.query<EntryRow>("SELECT * FROM entries WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", [ids]);
  const entries = new Map(rows.map((r) => [r.id, r]));
  // Retries name seqs already stored: their bytes are read once, together (O(chunk) each).
  const retries = batch.filter((b) => b.seq !== undefined && b.seq <= (entries.get(b.entryId)?.last_seq ?? 0));
  const stored = new Map<string, Buffer>();
  if (retries.length > 0) {
    const found = await client.query<{ entry_id: number; seq: number; data: Buffer }>(
      "SELECT entry_id, seq, data FROM chunks WHERE (entry_id, seq) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))",
      [retries.map((r) => r.entryId), retries.map((r) => r.seq)],
    );
    for (const row of found.rows) stored.set(`${row.entry_id}:${row.seq}`, row.data);
  }
  const inserts: { entryId: number; seq: number; byteOffset: number; lineOffset: number; newlines: number; data: Buffer }[] = [];
  const outcomes = batch.map(({ entryId, data, seq, open }): AppendOutcome => {
    const entry = entries.get(entryId);
    if (!entry) throw new Error(`entry ${entryId} vanished`);
    if (seq !== undefined && seq <= entry.last_seq) {
      const previous = stored.get(`${entryId}:${seq}`) ?? inserts.find((i) => i.entryId === entryId && i.seq === seq)?.data;
      if (!previous?.equals(data)) return { kind: "mismatch", seq };
      return { kind: "duplicate", seq, bytes: entry.bytes, lines: lineCount(entry), entry };
    }
    if (entry.status !== open) return { kind: "closed", status: entry.status };
    const next = entry.last_seq + 1;
    if (seq !== undefined && seq !== next) return { kind: "gap", expected: next };
    const newlines = countNewlines(data);
    inserts.push({ entryId, seq: next, byteOffset: entry.bytes, lineOffset: entry.newlines, newlines, data });
    const updated: EntryRow = {
      ...entry,
      bytes: entry.bytes + data.length,
      newlines: entry.newlines + newlines,
      ends_with_newline: data.length > 0 ? Number(data[data.length - 1] === 10) : entry.ends_with_newline,
      last_seq: next,
      updated_at: Date.now(),
    };
    entries.set(entryId, updated);
    return { kind: "appended", seq: next, bytes: updated.bytes, lines: lineCount(updated), entry: updated };
  });
  if (inserts.length === 0) return outcomes;
  // One multi-row INSERT with a parameter per value: node-postgres sends a Buffer parameter as binary, where a
  // bytea[] array would be spelled out in hex (twice the bytes, and parsed again by the server).
  const values = inserts.map((_, i) => `($${i * 6 + 1}, $${i * 6 + 2}, $${i * 6 + 3}, $${i * 6 + 4}, $${i * 6 + 5}, $${i * 6 + 6})`);
  await client.query(
    `INSERT INTO chunks (entry_id, seq, byte_offset, line_offset, newlines, data) VALUES ${values.join(", ")}`,
    inserts.flatMap((i) => [i.entryId, i.seq, i.byteOffset, i.lineOffset, i.newlines, i.data]),
  );
  const changed = [...new Set(inserts.map((i) => i.entryId))].map((id) => entries.get(id)!);
  await client.query(
    `UPDATE entries AS e SET bytes = v.bytes, newlines = v.newlines, ends_with_newline = v.ends, last_seq = v.last_seq, updated_at = v.updated_at
     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::integer[], $5::bigint[], $6::bigint[]) AS v(id, bytes, newlines, ends, last_seq, updated_at)
     WHERE e.id = v.id`,
    [
      changed.map((e) => e.id),
      changed.map((e) => e.bytes),
      changed.map((e) => e.newlines),
      changed.map((e) => e.ends_with_newline),
      changed.map((e) => e.last_seq),
      changed.map((e) => e.updated_at),
    ],
  );
  return outcomes;
}
