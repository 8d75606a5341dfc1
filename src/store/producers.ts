import { sql } from "kysely";
import type { Kysely } from "kysely";
import type { Attributes } from "./entries.js";
import type { Database, EntryRow } from "./schema.js";

/** Accepts a pending proposal: the log entry 202 → 200 and one streamed entry per channel at 102. */
export async function acceptProposal(
  db: Kysely<Database>,
  log: EntryRow,
  channels: { channel: number; path: string; attributes: Attributes }[],
  attributes: Attributes,
): Promise<EntryRow[] | null> {
  return db.transaction().execute(async (trx) => {
    const now = Date.now();
    const changed = await trx
      .updateTable("entries")
      .set({ status: 200, attributes: JSON.stringify(attributes), updated_at: now })
      .where("id", "=", log.id)
      .where("status", "=", 202)
      .executeTakeFirst();
    // Someone else resolved it between our read and this write.
    if (Number(changed.numUpdatedRows) === 0) return null;
    const rows: EntryRow[] = [];
    for (const ch of channels) {
      rows.push(
        await trx
          .insertInto("entries")
          .values({
            run_id: log.run_id,
            path: ch.path,
            scheme: ch.path.slice(0, ch.path.indexOf(":")),
            turn: log.turn,
            status: 102,
            attributes: JSON.stringify(ch.attributes),
            streamed: 1,
            producer_id: log.id,
            channel: ch.channel,
            created_at: now,
            updated_at: now,
          })
          .returningAll()
          .executeTakeFirstOrThrow(),
      );
    }
    return rows;
  });
}

/** Rejects a pending proposal (202 → 403); false when it was no longer pending. */
export async function rejectProposal(db: Kysely<Database>, log: EntryRow, attributes: Attributes): Promise<boolean> {
  const changed = await db
    .updateTable("entries")
    .set({ status: 403, attributes: JSON.stringify(attributes), updated_at: Date.now() })
    .where("id", "=", log.id)
    .where("status", "=", 202)
    .executeTakeFirst();
  return Number(changed.numUpdatedRows) > 0;
}

export interface FinishPlan {
  status: number;
  /** Merged into every channel's attributes. */
  channelAttributes: Attributes;
  /** Builds the log entry's new attributes and one-line body from the channels as finished. */
  log: (channels: EntryRow[]) => { attributes: Attributes; body: string };
}

/**
 * Finishes every open channel of a producer in one transaction. Returns the
 * channels after the change, and whether anything changed (a second finish
 * changes nothing).
 */
export async function finishProducer(
  db: Kysely<Database>,
  log: EntryRow,
  plan: FinishPlan,
): Promise<{ changed: boolean; channels: EntryRow[] }> {
  return db.transaction().execute(async (trx) => {
    const channels = await trx.selectFrom("entries").selectAll().where("producer_id", "=", log.id).orderBy("channel").execute();
    const open = channels.filter((c) => c.status === 102);
    if (open.length === 0) return { changed: false, channels };
    const now = Date.now();
    for (const ch of open) {
      const attributes = { ...(JSON.parse(ch.attributes) as Attributes), ...plan.channelAttributes };
      await trx
        .updateTable("entries")
        .set({ status: plan.status, attributes: JSON.stringify(attributes), updated_at: now })
        .where("id", "=", ch.id)
        .execute();
      ch.status = plan.status;
      ch.attributes = JSON.stringify(attributes);
      ch.updated_at = now;
    }
    const summary = plan.log(channels);
    await trx
      .updateTable("entries")
      .set({ body: summary.body, attributes: JSON.stringify(summary.attributes), updated_at: now })
      .where("id", "=", log.id)
      .execute();
    return { changed: true, channels };
  });
}

/** Open producers (log 200 with a channel still at 102) of a project assigned to `runner`. */
export async function listRunnerProducers(
  db: Kysely<Database>,
  projectId: number,
  runner: string,
): Promise<{ id: number; path: string }[]> {
  return db
    .selectFrom("entries as log")
    .innerJoin("runs", "runs.id", "log.run_id")
    .select(["log.id as id", "log.path as path"])
    .where("runs.project_id", "=", projectId)
    .where("log.scheme", "=", "log")
    .where("log.status", "=", 200)
    .where(sql<string>`json_extract(log.attributes, '$.runner')`, "=", runner)
    .where(({ exists, selectFrom }) =>
      exists(selectFrom("entries as ch").select("ch.id").whereRef("ch.producer_id", "=", "log.id").where("ch.status", "=", 102)),
    )
    .execute();
}

/** Merges one attribute into an entry without rewriting the others (safe against concurrent writers). */
export async function setAttribute(db: Kysely<Database>, id: number, key: string, value: unknown): Promise<void> {
  await db
    .updateTable("entries")
    .set({ attributes: sql<string>`json_set(attributes, ${"$." + key}, json(${JSON.stringify(value)}))` })
    .where("id", "=", id)
    .execute();
}
