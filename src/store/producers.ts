import { type Kysely, sql } from "kysely";
import { jsonText } from "./dialect.js";
import { type Attributes, wireAttributes } from "./entries.js";
import type { Database, EntryRow } from "./schema.js";

/**
 * Producer writes that must happen together. The store knows no status
 * numbers: the lifecycle core (src/core) passes the ones it means.
 */

/** The row's attributes with `set` written over them, as the column stores them. */
const merged = (row: Pick<EntryRow, "attributes">, set: Attributes) => JSON.stringify({ ...wireAttributes(row), ...set });

/**
 * Moves a producer's log entry from one status to another, writing `set` over its attributes; the row as
 * it is now, or null when it was no longer at `from` (someone else moved it first).
 */
export async function moveStatus(db: Kysely<Database>, log: EntryRow, from: number, to: number, set: Attributes): Promise<EntryRow | null> {
  const now = Date.now();
  const attributes = merged(log, set);
  const changed = await db
    .updateTable("entries")
    .set({ status: to, attributes, updated_at: now })
    .where("id", "=", log.id)
    .where("status", "=", from)
    .executeTakeFirst();
  return Number(changed.numUpdatedRows) > 0 ? { ...log, status: to, attributes, updated_at: now } : null;
}

/** A data channel to create: its number, path and attributes. */
interface NewChannel {
  channel: number;
  path: string;
  attributes: Attributes;
}

/** Creates a data channel of the producer whose log entry is `log`, at `status`. */
function insertChannel(db: Kysely<Database>, log: EntryRow, ch: NewChannel, status: number, now: number): Promise<EntryRow> {
  return db
    .insertInto("entries")
    .values({
      run_id: log.run_id,
      path: ch.path,
      scheme: ch.path.slice(0, ch.path.indexOf(":")),
      turn: log.turn,
      status,
      attributes: JSON.stringify(ch.attributes),
      streamed: 1,
      producer_id: log.id,
      channel: ch.channel,
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** A command accepted into its pool's queue: the queue, the project, which runners may take it (JSON), since when. */
export interface Enqueue {
  projectId: number;
  pool: string;
  admits: string;
  queuedAt: number;
}

/**
 * Moves the log entry `from` → `to` (writing `set` over its attributes) and creates its data channels at
 * `channelStatus`, in one transaction, with its row in the runner queue when `queue` says so; null when it had moved already.
 */
export async function openChannels(
  db: Kysely<Database>,
  log: EntryRow,
  move: { from: number; to: number; set: Attributes },
  channels: NewChannel[],
  channelStatus: number,
  queue?: Enqueue,
): Promise<{ log: EntryRow; channels: EntryRow[] } | null> {
  return db.transaction().execute(async (trx) => {
    const moved = await moveStatus(trx, log, move.from, move.to, move.set);
    if (!moved) return null;
    const now = Date.now();
    const rows: EntryRow[] = [];
    for (const ch of channels) rows.push(await insertChannel(trx, log, ch, channelStatus, now));
    if (queue) {
      await trx
        .insertInto("runner_queue")
        .values({ producer_id: log.id, project_id: queue.projectId, pool: queue.pool, admits: queue.admits, queued_at: queue.queuedAt })
        .execute();
    }
    return { log: moved, channels: rows };
  });
}

/**
 * Opens one more channel of an accepted producer at `open` (the input channel, created with the first
 * input), in one transaction with the check that the producer still has a channel at `open`: null when it
 * has finished. A channel that exists already is returned as it is.
 */
export async function openChannel(db: Kysely<Database>, log: EntryRow, channel: NewChannel, open: number): Promise<EntryRow | null> {
  return db.transaction().execute(async (trx) => {
    const channels = await trx.selectFrom("entries").selectAll().where("producer_id", "=", log.id).execute();
    const existing = channels.find((c) => c.channel === channel.channel);
    if (existing) return existing;
    if (!channels.some((c) => c.status === open)) return null;
    return insertChannel(trx, log, channel, open, Date.now());
  });
}

export interface FinishPlan {
  /** Channels at these statuses are the open ones (queued, streaming): a queued command leaves its queue with them. */
  open: readonly number[];
  status: number;
  /** Merged into every channel's attributes. */
  channelAttributes: Attributes;
  /** Builds what is written over the log entry's attributes, and its one-line body, from the channels as finished. */
  log: (channels: EntryRow[]) => { set: Attributes; body: string };
}

/**
 * Finishes every open channel of a producer in one transaction (a queued one leaves the runner queue in it). Returns
 * the channels after the change, and whether anything changed (a second finish changes nothing).
 */
export async function closeChannels(db: Kysely<Database>, log: EntryRow, plan: FinishPlan): Promise<{ changed: boolean; channels: EntryRow[] }> {
  return db.transaction().execute(async (trx) => {
    const channels = await trx.selectFrom("entries").selectAll().where("producer_id", "=", log.id).orderBy("channel").execute();
    const open = channels.filter((c) => plan.open.includes(c.status));
    if (open.length === 0) return { changed: false, channels };
    const now = Date.now();
    await trx.deleteFrom("runner_queue").where("producer_id", "=", log.id).execute();
    for (const ch of open) {
      const attributes = merged(ch, plan.channelAttributes);
      await trx.updateTable("entries").set({ status: plan.status, attributes, updated_at: now }).where("id", "=", ch.id).execute();
      ch.status = plan.status;
      ch.attributes = attributes;
      ch.updated_at = now;
    }
    const summary = plan.log(channels);
    await trx
      .updateTable("entries")
      .set({ body: summary.body, attributes: merged(log, summary.set), updated_at: now })
      .where("id", "=", log.id)
      .execute();
    return { changed: true, channels };
  });
}

/** Producers of a project assigned to `runner` (log attribute) that still have a channel at `open`. */
export async function listRunnerProducers(db: Kysely<Database>, projectId: number, runner: string, open: number): Promise<{ id: number; path: string }[]> {
  return db
    .selectFrom("entries as log")
    .innerJoin("runs", "runs.id", "log.run_id")
    .select(["log.id as id", "log.path as path"])
    .where("runs.project_id", "=", projectId)
    .where("log.scheme", "=", "log")
    .where(jsonText(db, "log.attributes", "runner"), "=", runner)
    .where(({ exists, selectFrom }) =>
      exists(selectFrom("entries as ch").select("ch.id").whereRef("ch.producer_id", "=", "log.id").where("ch.status", "=", open)),
    )
    .execute();
}

/** How many producers of a project each runner (its name, the log attribute) runs: those with a channel at `open`. */
export async function countByRunner(db: Kysely<Database>, projectId: number, open: number): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom("entries as log")
    .innerJoin("runs", "runs.id", "log.run_id")
    .select((eb) => [jsonText(db, "log.attributes", "runner").as("runner"), eb.fn.countAll<number>().as("n")])
    .where("runs.project_id", "=", projectId)
    .where("log.scheme", "=", "log")
    .where(({ exists, selectFrom }) =>
      exists(selectFrom("entries as ch").select("ch.id").whereRef("ch.producer_id", "=", "log.id").where("ch.status", "=", open)),
    )
    // By position: the attribute's expression is a parameter each time it is written, which PostgreSQL does not match.
    .groupBy(sql`1`)
    .execute();
  return new Map(rows.filter((r) => r.runner !== null).map((r) => [r.runner, Number(r.n)]));
}
