import { Kysely, PostgresDialect } from "kysely";
// pg is loaded when a PostgreSQL store is opened: a server on SQLite never holds it (~2 MB of heap).
import type pg from "pg";
import { lineCount } from "../../protocol/entry-lines.js";
import { storeError } from "../errors.js";
import type { Database, EntryRow } from "../schema.js";
import { type AppendOutcome, countNewlines, type QueuedAppend, type Store } from "../store.js";

export interface PostgresStoreOptions {
  /** Connections in the pool. */
  poolSize?: number;
}

/** PostgreSQL types read as JavaScript numbers: BIGINT (ids, times, counters) and NUMERIC (sums). Both stay below 2^53 here. */
const NUMERIC_TYPES = [20, 1700];

/**
 * Chunks (and any other large value) are compressed with lz4 rather than PostgreSQL's default pglz, where the
 * server has it (PostgreSQL 14 and later, built with lz4): a 64 KiB chunk of output costs the server a third
 * of the CPU to store (bench/history/README.md). Per session, so a server without lz4 simply keeps pglz; values
 * written either way read the same.
 */
const LZ4_TOAST = `DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
    SET default_toast_compression = lz4;
  END IF;
END $$`;

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
  const { default: pg } = await import("pg");
  const types = {
    getTypeParser: (oid: number, format?: "text" | "binary") =>
      NUMERIC_TYPES.includes(oid) ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as "text"),
  };
  const config: pg.PoolConfig = {
    connectionString: url,
    types: types as pg.CustomTypesConfig,
    // pg-pool waits for the promise before the connection is used (its type says void).
    onConnect: (client) => client.query(LZ4_TOAST),
  };
  const pool = new pg.Pool({ ...config, max: options.poolSize ?? 10 });
  // Appends have connections of their own (one per batch on its way): a stream's chunks never wait for a
  // connection behind the other queries (at the end of a run, hundreds of producers completing at once).
  const appendPool = new pg.Pool({ ...config, max: APPEND_CONNECTIONS, idleTimeoutMillis: 0 });
  // A dropped idle connection must not crash the server; the pool replaces it.
  pool.on("error", () => undefined);
  appendPool.on("error", () => undefined);
  // Fail at start-up, with the server's own message, when the database cannot be reached.
  const probe = await pool.connect().catch(async (error: unknown) => {
    await pool.end().catch(() => undefined);
    await appendPool.end().catch(() => undefined);
    throw new Error(`Cannot connect to PostgreSQL at ${redactUrl(url)}: ${error instanceof Error ? error.message : String(error)}`);
  });
  probe.release();
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const appends = new AppendBatcher(appendPool);
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
      await appendPool.end();
      // destroy() ends the pool once pending queries finish.
      await db.destroy();
    },
  };
}

/** An append waiting for the next batch: the same as SQLite's queue holds (../store.ts). */
type Pending = QueuedAppend;

/** At most this many appends share one batch, and at most this many bytes of chunks (a larger chunk goes alone). */
const MAX_BATCH = 256;
const MAX_BATCH_BYTES = 16 * 2 ** 20;
/** Channels whose counters this server remembers from its last commit to them, at most. */
const KNOWN_LIMIT = 4096;

/** The appends of one channel that continue from the counters this server committed last, decided before writing. */
interface Plan {
  was: EntryRow;
  final: EntryRow;
  items: Pending[];
  inserts: ChunkInsert[];
  outcomes: AppendOutcome[];
}

interface ChunkInsert {
  entryId: number;
  seq: number;
  byteOffset: number;
  lineOffset: number;
  newlines: number;
  data: Buffer;
}

/**
 * The appends of a batch that go in one statement, with no transaction
 * around it and no read before it: each channel's counters are updated
 * only where the row still holds what this server committed last (and the
 * channel is still open), and its chunks are inserted only where that
 * update happened. All chunk bytes travel as one binary parameter, cut
 * apart by the server, so the text is the same whatever the batch holds
 * and each connection prepares it once.
 */
const FAST_APPEND = {
  name: "spool_append_v1",
  text: `WITH v AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::integer[], $8::bigint[], $9::bigint[], $10::integer[])
      AS v(id, was_seq, was_bytes, was_newlines, bytes, newlines, ends, last_seq, updated_at, open)
  ), u AS (
    UPDATE entries AS e SET bytes = v.bytes, newlines = v.newlines, ends_with_newline = v.ends, last_seq = v.last_seq, updated_at = v.updated_at
    FROM v WHERE e.id = v.id AND e.last_seq = v.was_seq AND e.bytes = v.was_bytes AND e.newlines = v.was_newlines AND e.status = v.open
    RETURNING e.id
  )
  INSERT INTO chunks (entry_id, seq, byte_offset, line_offset, newlines, data)
  SELECT c.entry_id, c.seq, c.byte_offset, c.line_offset, c.newlines, substring($11::bytea FROM c.start FOR c.length)
  FROM unnest($12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], $17::integer[], $18::integer[])
    AS c(entry_id, seq, byte_offset, line_offset, newlines, start, length)
  JOIN u ON u.id = c.entry_id
  RETURNING entry_id`,
};

/** Batches on their way at once, each on a connection of its own (a channel is in one of them at most). */
const APPEND_CONNECTIONS = 4;

/**
 * Group commit for PostgreSQL: appends that arrive while batches are on
 * their way share the next one. Up to APPEND_CONNECTIONS batches are
 * written at once, each on its own connection, so a batch never waits for
 * the answer to another (a round trip, and the server's event loop getting
 * to it) before it is sent; a channel is in one of them at most, and its
 * appends that come meanwhile wait for that batch, so the chunks of one
 * channel are written in the order they came.
 *
 * A channel this server appended to last (the common case: its owner
 * streaming) takes the fast path, FAST_APPEND: one round trip for the whole
 * batch, committed on its own. Anything else (a first append, a retry, a
 * gap, a closed channel, a channel another server wrote meanwhile) takes
 * the locked path, writeBatch, which reads the rows under `FOR UPDATE` and
 * decides from what is stored. Both are single transactions: an append is
 * acknowledged after its commit. Batches on their way together hold
 * different channels, so they never wait for each other's row locks.
 */
class AppendBatcher {
  #pending: Pending[] = [];
  /** Channels in a batch on its way. */
  readonly #busy = new Set<number>();
  #inFlight = 0;
  #scheduled = false;
  #idle: (() => void)[] = [];
  /**
   * Per channel, its row as this server's last commit left it. Only a guess: FAST_APPEND checks the counters
   * and the status against the row, and a channel whose row says otherwise goes the locked path.
   */
  readonly #known = new Map<number, EntryRow>();

  constructor(private readonly pool: pg.Pool) {}

  append(entryId: number, data: Buffer, seq: number | undefined, open: number): Promise<AppendOutcome> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ entryId, data, seq, open, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves once every append queued so far is settled. */
  drain(): Promise<void> {
    if (this.#pending.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Starts the next batch after this turn of the event loop, so the appends of the turn join it. */
  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= APPEND_CONNECTIONS) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#start();
    });
  }

  /** Sends batches while a connection is free and appends wait whose channel is in no batch on its way. */
  #start(): void {
    while (this.#inFlight < APPEND_CONNECTIONS && this.#pending.length > 0) {
      const batch = this.#take();
      if (batch.length === 0) break;
      this.#inFlight++;
      for (const item of batch) this.#busy.add(item.entryId);
      void this.#write(batch)
        // #write settles every append itself; anything it did not foresee still settles them.
        .catch((error: unknown) => {
          for (const item of batch) item.reject(storeError(error));
        })
        .finally(() => {
          this.#inFlight--;
          for (const item of batch) this.#busy.delete(item.entryId);
          if (this.#pending.length > 0) this.#start();
          if (this.#pending.length === 0 && this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
        });
    }
  }

  /**
   * The next batch: waiting appends in the order they came, at most MAX_BATCH of them and MAX_BATCH_BYTES (a larger
   * chunk goes alone), leaving those of a channel in a batch on its way, and every later one of a channel left.
   */
  #take(): Pending[] {
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    const left = new Set<number>();
    let bytes = 0;
    for (const item of this.#pending) {
      const fits = batch.length < MAX_BATCH && (batch.length === 0 || bytes + item.data.length <= MAX_BATCH_BYTES);
      if (!fits || left.has(item.entryId) || this.#busy.has(item.entryId)) {
        left.add(item.entryId);
        rest.push(item);
        continue;
      }
      bytes += item.data.length;
      batch.push(item);
    }
    this.#pending = rest;
    return batch;
  }

  /** Writes a batch; settles every append in it. */
  async #write(batch: Pending[]): Promise<void> {
    const byEntry = new Map<number, Pending[]>();
    for (const item of batch) {
      const items = byEntry.get(item.entryId);
      if (items) items.push(item);
      else byEntry.set(item.entryId, [item]);
    }
    const plans: Plan[] = [];
    let locked: Pending[] = [];
    for (const [entryId, items] of byEntry) {
      const plan = this.#plan(entryId, items);
      if (plan) plans.push(plan);
      else locked = locked.concat(items);
    }
    if (plans.length > 0) {
      try {
        const written = await this.#writeFast(plans);
        for (const plan of plans) {
          if (written.has(plan.was.id)) {
            this.#remember(plan.final);
            for (const [i, item] of plan.items.entries()) item.resolve(plan.outcomes[i]!);
          } else {
            // The row is not as this server left it (another server appended, or the channel was closed): nothing
            // of this channel was written; the locked path decides from what is stored.
            this.#known.delete(plan.was.id);
            locked = locked.concat(plan.items);
          }
        }
      } catch (error) {
        // The statement rolled back whole: every writer in it gets the error and may retry its seq.
        const typed = storeError(error);
        for (const plan of plans) {
          this.#known.delete(plan.was.id);
          for (const item of plan.items) item.reject(typed);
        }
      }
    }
    if (locked.length === 0) return;
    try {
      const { outcomes, rows } = await this.#writeLocked(locked);
      for (const row of rows) this.#remember(row);
      for (const [i, item] of locked.entries()) item.resolve(outcomes[i]!);
    } catch (error) {
      // The whole transaction rolled back: every writer in it gets the error and may retry its seq.
      const typed = storeError(error);
      for (const item of locked) {
        this.#known.delete(item.entryId);
        item.reject(typed);
      }
    }
  }

  /** The appends of one channel as new chunks after what this server committed last, or undefined when any is not one. */
  #plan(entryId: number, items: Pending[]): Plan | undefined {
    const was = this.#known.get(entryId);
    if (!was) return undefined;
    let entry = was;
    const inserts: ChunkInsert[] = [];
    const outcomes: AppendOutcome[] = [];
    for (const { data, seq, open } of items) {
      if (entry.status !== open) return undefined;
      const next = entry.last_seq + 1;
      if (seq !== undefined && seq !== next) return undefined;
      const newlines = countNewlines(data);
      inserts.push({ entryId, seq: next, byteOffset: entry.bytes, lineOffset: entry.newlines, newlines, data });
      entry = advance(entry, data, newlines, next);
      outcomes.push({ kind: "appended", seq: next, bytes: entry.bytes, lines: lineCount(entry) });
    }
    return { was, final: entry, items, inserts, outcomes };
  }

  /** FAST_APPEND over the plans; resolves to the channels it wrote. */
  async #writeFast(plans: Plan[]): Promise<Set<number>> {
    const inserts = plans.flatMap((p) => p.inserts);
    const starts: number[] = [];
    let offset = 1;
    for (const i of inserts) {
      starts.push(offset);
      offset += i.data.length;
    }
    const data =
      inserts.length === 1
        ? inserts[0]!.data
        : Buffer.concat(
            inserts.map((i) => i.data),
            offset - 1,
          );
    const { rows } = await this.pool.query<{ entry_id: number }>({
      ...FAST_APPEND,
      values: [
        plans.map((p) => p.was.id),
        plans.map((p) => p.was.last_seq),
        plans.map((p) => p.was.bytes),
        plans.map((p) => p.was.newlines),
        plans.map((p) => p.final.bytes),
        plans.map((p) => p.final.newlines),
        plans.map((p) => p.final.ends_with_newline),
        plans.map((p) => p.final.last_seq),
        plans.map((p) => p.final.updated_at),
        plans.map((p) => p.was.status),
        data,
        inserts.map((i) => i.entryId),
        inserts.map((i) => i.seq),
        inserts.map((i) => i.byteOffset),
        inserts.map((i) => i.lineOffset),
        inserts.map((i) => i.newlines),
        starts,
        inserts.map((i) => i.data.length),
      ],
    });
    return new Set(rows.map((r) => Number(r.entry_id)));
  }

  async #writeLocked(batch: Pending[]): Promise<{ outcomes: AppendOutcome[]; rows: EntryRow[] }> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const written = await writeBatch(client, batch);
      await client.query("COMMIT");
      return written;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  #remember(row: EntryRow): void {
    this.#known.delete(row.id);
    this.#known.set(row.id, row);
    if (this.#known.size > KNOWN_LIMIT) this.#known.delete(this.#known.keys().next().value!);
  }
}

/** The row after one more chunk. */
function advance(entry: EntryRow, data: Buffer, newlines: number, seq: number): EntryRow {
  return {
    ...entry,
    bytes: entry.bytes + data.length,
    newlines: entry.newlines + newlines,
    ends_with_newline: data.length > 0 ? Number(data[data.length - 1] === 10) : entry.ends_with_newline,
    last_seq: seq,
    updated_at: Date.now(),
  };
}

/**
 * The locked path: a batch in a fixed number of round trips, whatever its
 * size: lock its entries (in id order, so two servers never deadlock),
 * decide every append in memory, then one INSERT of all new chunks and one
 * UPDATE of all counters. Returns the outcomes and the rows as left.
 */
async function writeBatch(client: pg.PoolClient, batch: Pending[]): Promise<{ outcomes: AppendOutcome[]; rows: EntryRow[] }> {
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
  const inserts: ChunkInsert[] = [];
  const outcomes = batch.map(({ entryId, data, seq, open }): AppendOutcome => {
    const entry = entries.get(entryId);
    if (!entry) throw new Error(`entry ${entryId} vanished`);
    if (seq !== undefined && seq <= entry.last_seq) {
      const previous = stored.get(`${entryId}:${seq}`) ?? inserts.find((i) => i.entryId === entryId && i.seq === seq)?.data;
      if (!previous?.equals(data)) return { kind: "mismatch", seq };
      return { kind: "duplicate", seq, bytes: entry.bytes, lines: lineCount(entry) };
    }
    if (entry.status !== open) return { kind: "closed", status: entry.status };
    const next = entry.last_seq + 1;
    if (seq !== undefined && seq !== next) return { kind: "gap", expected: next };
    const newlines = countNewlines(data);
    inserts.push({ entryId, seq: next, byteOffset: entry.bytes, lineOffset: entry.newlines, newlines, data });
    const updated = advance(entry, data, newlines, next);
    entries.set(entryId, updated);
    return { kind: "appended", seq: next, bytes: updated.bytes, lines: lineCount(updated) };
  });
  if (inserts.length === 0) return { outcomes, rows: [...entries.values()] };
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
  return { outcomes, rows: [...entries.values()] };
}
