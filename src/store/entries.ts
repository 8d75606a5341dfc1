import { sql, type Kysely } from "kysely";
import type { Database, EntryRow, EntryUpdate, NewEntry } from "./schema.js";

export type Attributes = Record<string, unknown>;

export function parseAttributes(row: Pick<EntryRow, "attributes">): Attributes {
  return JSON.parse(row.attributes) as Attributes;
}

/** Line count of a streamed body: newlines, plus one for a last line without its newline. */
export function lineCount(row: Pick<EntryRow, "bytes" | "newlines" | "ends_with_newline">): number {
  return row.newlines + (row.bytes > 0 && !row.ends_with_newline ? 1 : 0);
}

export function findEntry(db: Kysely<Database>, runId: number, path: string): Promise<EntryRow | undefined> {
  return db.selectFrom("entries").selectAll().where("run_id", "=", runId).where("path", "=", path).executeTakeFirst();
}

export function insertEntry(db: Kysely<Database>, entry: NewEntry): Promise<EntryRow> {
  return db.insertInto("entries").values(entry).returningAll().executeTakeFirstOrThrow();
}

export async function updateEntry(db: Kysely<Database>, id: number, update: EntryUpdate): Promise<void> {
  await db.updateTable("entries").set({ ...update, updated_at: Date.now() }).where("id", "=", id).execute();
}

/** The data channels of one producer (log entry), by channel number. */
export function listChannels(db: Kysely<Database>, producerId: number): Promise<EntryRow[]> {
  return db.selectFrom("entries").selectAll().where("producer_id", "=", producerId).orderBy("channel").execute();
}

export interface EntryFilter {
  /** Glob over the path: `*` matches any run of characters, `?` one character. */
  pattern?: string;
  status?: number;
  limit: number;
}

export function listEntries(db: Kysely<Database>, runId: number, filter: EntryFilter): Promise<EntryRow[]> {
  let query = db.selectFrom("entries").selectAll().where("run_id", "=", runId);
  if (filter.pattern !== undefined) query = query.where(sql<boolean>`path glob ${filter.pattern}`);
  if (filter.status !== undefined) query = query.where("status", "=", filter.status);
  return query.orderBy("id").limit(filter.limit).execute();
}

/** Log entries of every run of a project that are still proposals (status 202). */
export function listPendingProposals(db: Kysely<Database>, projectId: number): Promise<(EntryRow & { alias: string })[]> {
  return db
    .selectFrom("entries")
    .innerJoin("runs", "runs.id", "entries.run_id")
    .selectAll("entries")
    .select("runs.alias")
    .where("runs.project_id", "=", projectId)
    .where("entries.status", "=", 202)
    .where("entries.scheme", "=", "log")
    .orderBy("entries.id")
    .execute();
}

/** Producers (log entries) that still have channels at 102, across all projects. */
export async function listOpenProducerIds(db: Kysely<Database>): Promise<number[]> {
  const rows = await db
    .selectFrom("entries")
    .select("producer_id")
    .distinct()
    .where("status", "=", 102)
    .where("producer_id", "is not", null)
    .execute();
  return rows.map((r) => r.producer_id!);
}
