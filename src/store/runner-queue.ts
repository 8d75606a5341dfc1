import { type Kysely, sql } from "kysely";
import { isPostgres, jsonMerge, jsonText } from "./dialect.js";
import type { Attributes } from "./entries.js";
import type { Database, EntryRow } from "./schema.js";

/*
 * The queue of accepted commands waiting for a free runner of their pool (migration 025). A row is written in the
 * accept's transaction (producers.ts openChannels), taken (locked and deleted) in the transaction that moves the
 * command's channels from queued to streaming (`takeQueued`), and dropped in the one that finishes it (cancel:
 * producers.ts closeChannels).
 * The store knows no status numbers: the lifecycle core passes the ones it means.
 */

/** A queued command as the queue holds it. */
export interface QueueRow {
  id: number;
  producer_id: number;
  project_id: number;
  pool: string;
  admits: string;
  queued_at: number;
}

/** The queues of a project that hold commands now (`pool:NAME`, `labels:…`, `runner:NAME`). */
export async function queueKeys(db: Kysely<Database>, projectId: number): Promise<string[]> {
  const rows = await db.selectFrom("runner_queue").select("pool").distinct().where("project_id", "=", projectId).execute();
  return rows.map((r) => r.pool);
}

/** Every project with commands queued now, with the queues that hold them. */
export async function queuedProjects(db: Kysely<Database>): Promise<{ project_id: number; pool: string }[]> {
  return db.selectFrom("runner_queue").select(["project_id", "pool"]).distinct().execute();
}

/** What a take moves: the command's channels from `open` to `to`, and `set` written over its log entry's attributes. */
export interface TakePlan {
  /** The status of a queued channel. */
  open: number;
  /** The status its channels take (streaming). */
  to: number;
  /** Written over the log entry's attributes (the runner that took it, its owner key). */
  set: Attributes;
  /** Only this producer (a take of one command); absent: the first one `admit` lets through. */
  producerId?: number;
  /** Looked at in order, at most (a runner's queues hold commands it may not take: another principal's, another mode). */
  window?: number;
}

/**
 * Takes the oldest command of the project's queues `keys` that `admit` lets through (its `admits` JSON), once whichever
 * server asks: its row is locked (PostgreSQL: FOR UPDATE SKIP LOCKED, so takes by other runners go on with the next
 * rows; SQLite has one writer) and deleted, and its channels move from queued to `plan.to` only if they are still
 * queued, in one transaction; the log entry gets `plan.set`. Rows of commands no longer queued (cancelled meanwhile)
 * are dropped on the way. Null when none could be taken.
 */
export function takeQueued(
  db: Kysely<Database>,
  projectId: number,
  keys: readonly string[],
  admit: (admits: string) => boolean,
  plan: TakePlan,
): Promise<{ log: EntryRow; channels: EntryRow[]; queuedAt: number; pool: string } | null> {
  if (keys.length === 0) return Promise.resolve(null);
  return db.transaction().execute(async (trx) => {
    const postgres = isPostgres(trx);
    let query = trx.selectFrom("runner_queue").selectAll().where("project_id", "=", projectId).where("pool", "in", keys);
    if (plan.producerId !== undefined) query = query.where("producer_id", "=", plan.producerId);
    const rows = await query
      .orderBy("id")
      .limit(plan.window ?? 64)
      .execute();
    for (const row of rows) {
      if (!admit(row.admits)) continue;
      // Taken by a runner of another server meanwhile (deleted), or being taken now (locked): the next one.
      if (postgres && (await sql`SELECT id FROM runner_queue WHERE id = ${row.id} FOR UPDATE SKIP LOCKED`.execute(trx)).rows.length === 0) continue;
      const gone = await trx.deleteFrom("runner_queue").where("id", "=", row.id).executeTakeFirst();
      if (Number(gone.numDeletedRows) === 0) continue;
      const now = Date.now();
      const channels = await trx
        .updateTable("entries")
        .set({ status: plan.to, updated_at: now })
        .where("producer_id", "=", row.producer_id)
        .where("status", "=", plan.open)
        .returningAll()
        .execute();
      if (channels.length === 0) continue;
      const log = await trx
        .updateTable("entries")
        .set({ attributes: jsonMerge(trx, "attributes", plan.set), updated_at: now })
        .where("id", "=", row.producer_id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { log, channels: channels.sort((x, y) => (x.channel ?? 0) - (y.channel ?? 0)), queuedAt: row.queued_at, pool: row.pool };
    }
    return null;
  });
}

/** A queued command's place in its queue (1: next), and its queue; null when it waits in none. */
export async function queuePlace(db: Kysely<Database>, producerId: number): Promise<{ pool: string; position: number; queuedAt: number } | null> {
  const row = await db.selectFrom("runner_queue").selectAll().where("producer_id", "=", producerId).executeTakeFirst();
  if (!row) return null;
  const ahead = await db
    .selectFrom("runner_queue")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("project_id", "=", row.project_id)
    .where("pool", "=", row.pool)
    .where("id", "<", row.id)
    .executeTakeFirstOrThrow();
  return { pool: row.pool, position: Number(ahead.n) + 1, queuedAt: row.queued_at };
}

/** Commands queued in a project, per queue: how many, and since when the oldest waits. */
export async function queueCounts(db: Kysely<Database>, projectId: number): Promise<{ pool: string; n: number; oldest: number }[]> {
  const rows = await db
    .selectFrom("runner_queue")
    .select((eb) => ["pool", eb.fn.countAll<number>().as("n"), eb.fn.min("queued_at").as("oldest")])
    .where("project_id", "=", projectId)
    .groupBy("pool")
    .execute();
  return rows.map((r) => ({ pool: r.pool, n: Number(r.n), oldest: Number(r.oldest) }));
}

/** Commands queued on the whole database, per queue (the metrics: the same figures on every server). */
export async function queueCountsEverywhere(db: Kysely<Database>): Promise<{ pool: string; n: number }[]> {
  const rows = await db
    .selectFrom("runner_queue")
    .select((eb) => ["pool", eb.fn.countAll<number>().as("n")])
    .groupBy("pool")
    .execute();
  return rows.map((r) => ({ pool: r.pool, n: Number(r.n) }));
}

/**
 * A project's queued commands in the order runners take them (per queue), `pool` only when given: each with its run,
 * its log path, its command and its position in its queue; and how many there are in all.
 */
export async function listQueued(
  db: Kysely<Database>,
  projectId: number,
  pool: string | undefined,
  limit: number,
): Promise<{ rows: { run: string; path: string; command: string; pool: string; position: number; since: number }[]; total: number }> {
  let base = db.selectFrom("runner_queue").where("runner_queue.project_id", "=", projectId);
  if (pool !== undefined) base = base.where("runner_queue.pool", "=", pool);
  const total = await base.select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  const rows = await base
    .innerJoin("entries as log", "log.id", "runner_queue.producer_id")
    .innerJoin("runs", "runs.id", "log.run_id")
    .select([
      "runs.alias as run",
      "log.path as path",
      jsonText(db, "log.attributes", "command").as("command"),
      "runner_queue.pool as pool",
      "runner_queue.queued_at as since",
      sql<number>`row_number() over (partition by runner_queue.pool order by runner_queue.id)`.as("position"),
    ])
    .orderBy("runner_queue.id")
    .limit(limit)
    .execute();
  return {
    rows: rows.map((r) => ({ run: r.run, path: r.path, command: r.command ?? "", pool: r.pool, position: Number(r.position), since: Number(r.since) })),
    total: Number(total.n),
  };
}

/** The queue row of a producer (what it was accepted for), if it waits. */
export async function findQueued(db: Kysely<Database>, producerId: number): Promise<QueueRow | undefined> {
  return db.selectFrom("runner_queue").selectAll().where("producer_id", "=", producerId).executeTakeFirst();
}
