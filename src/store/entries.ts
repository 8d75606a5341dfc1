import { type Kysely, sql } from "kysely";
import { globMatch, jsonSet, jsonText } from "./dialect.js";
import { uniquely } from "./errors.js";
import type { Database, EntryRow, EntryUpdate, NewEntry } from "./schema.js";

export type Attributes = Record<string, unknown>;

/**
 * An entry's stored attributes, untouched: only for the wire, which carries them as they are (entry/get,
 * entry/list, run/proposal). Server code reads a producer's through producer-row.ts's typed mapping.
 */
export function wireAttributes(row: Pick<EntryRow, "attributes">): Attributes {
  return JSON.parse(row.attributes) as Attributes;
}

export { lineCount } from "../protocol/entry-lines.js";

export function findEntry(db: Kysely<Database>, runId: number, path: string): Promise<EntryRow | undefined> {
  return db.selectFrom("entries").selectAll().where("run_id", "=", runId).where("path", "=", path).executeTakeFirst();
}

export function findEntryById(db: Kysely<Database>, id: number): Promise<EntryRow | undefined> {
  return db.selectFrom("entries").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Inserts an entry; a path the run already has is a UniqueViolation. */
export function insertEntry(db: Kysely<Database>, entry: NewEntry): Promise<EntryRow> {
  return uniquely("entries", () => db.insertInto("entries").values(entry).returningAll().executeTakeFirstOrThrow());
}

/** Inserts an entry or, when the run already has its path, replaces its body and attributes. */
export async function upsertEntry(db: Kysely<Database>, entry: NewEntry): Promise<void> {
  await db
    .insertInto("entries")
    .values(entry)
    .onConflict((oc) => oc.columns(["run_id", "path"]).doUpdateSet({ body: entry.body, attributes: entry.attributes, updated_at: entry.updated_at }))
    .execute();
}

export async function updateEntry(db: Kysely<Database>, id: number, update: EntryUpdate): Promise<void> {
  await db
    .updateTable("entries")
    .set({ ...update, updated_at: Date.now() })
    .where("id", "=", id)
    .execute();
}

/** Merges one attribute into an entry without rewriting the others (safe against concurrent writers). */
export async function setAttribute(db: Kysely<Database>, id: number, key: string, value: unknown): Promise<void> {
  await db
    .updateTable("entries")
    .set({ attributes: jsonSet(db, "attributes", key, value) })
    .where("id", "=", id)
    .execute();
}

/** The data channels of one producer (log entry), by channel number. */
export function listChannels(db: Kysely<Database>, producerId: number): Promise<EntryRow[]> {
  return db.selectFrom("entries").selectAll().where("producer_id", "=", producerId).orderBy("channel").execute();
}

/** The data channels of several producers (log entries) at once, by producer then channel number. */
export function listChannelsOf(db: Kysely<Database>, producerIds: readonly number[]): Promise<EntryRow[]> {
  if (producerIds.length === 0) return Promise.resolve([]);
  return db.selectFrom("entries").selectAll().where("producer_id", "in", producerIds).orderBy("producer_id").orderBy("channel").execute();
}

export interface EntryFilter {
  /** Glob over the path: `*` matches any run of characters, `?` one character. */
  pattern?: string | undefined;
  status?: number | undefined;
  limit: number;
}

export function listEntries(db: Kysely<Database>, runId: number, filter: EntryFilter): Promise<EntryRow[]> {
  let query = db.selectFrom("entries").selectAll().where("run_id", "=", runId);
  if (filter.pattern !== undefined) query = query.where(globMatch(db, "path", filter.pattern));
  if (filter.status !== undefined) query = query.where("status", "=", filter.status);
  return query.orderBy("id").limit(filter.limit).execute();
}

/** Log entries of a run whose status is one of `statuses`. */
export function listLogsIn(db: Kysely<Database>, runId: number, statuses: readonly number[]): Promise<EntryRow[]> {
  return db.selectFrom("entries").selectAll().where("run_id", "=", runId).where("scheme", "=", "log").where("status", "in", statuses).orderBy("id").execute();
}

/** Log entries at `status` in every run of a project (pending proposals), with their run's alias. */
export function listProjectLogsAt(
  db: Kysely<Database>,
  projectId: number,
  status: number,
  page: { afterId?: number; limit?: number; runId?: number } = {},
): Promise<(EntryRow & { alias: string })[]> {
  let query = db
    .selectFrom("entries")
    .innerJoin("runs", "runs.id", "entries.run_id")
    .selectAll("entries")
    .select("runs.alias")
    .where("runs.project_id", "=", projectId)
    .where("entries.status", "=", status)
    .where("entries.scheme", "=", "log");
  if (page.afterId !== undefined) query = query.where("entries.id", ">", page.afterId);
  if (page.runId !== undefined) query = query.where("entries.run_id", "=", page.runId);
  if (page.limit !== undefined) query = query.limit(page.limit);
  return query.orderBy("entries.id").execute();
}

/** Producers (log entry ids) that still have a channel at `status`, across all projects. */
export async function listProducersWithChannelsAt(db: Kysely<Database>, status: number): Promise<number[]> {
  const rows = await db.selectFrom("entries").select("producer_id").distinct().where("status", "=", status).where("producer_id", "is not", null).execute();
  return rows.map((r) => r.producer_id as number);
}

/**
 * Paths of a run equal to `prefix` or starting with `prefix-` (the slug suffixes a turn already uses). `bytewise`
 * (SQLite, whose text compares byte by byte) bounds the read to the index's range [prefix, prefix + ".") — every
 * such path sorts there, as "-" comes just before "." — instead of every path of the run (a proposal in a run of
 * thousands read them all). PostgreSQL's collation need not sort so: there the filter alone decides.
 */
export async function pathsWithPrefix(db: Kysely<Database>, runId: number, prefix: string, bytewise = false): Promise<string[]> {
  let query = db
    .selectFrom("entries")
    .select("path")
    .where("run_id", "=", runId)
    .where((eb) => eb.or([eb("path", "=", prefix), eb(eb.fn("substr", ["path", eb.val(1), eb.val(prefix.length + 1)]), "=", `${prefix}-`)]));
  if (bytewise) query = query.where("path", ">=", prefix).where("path", "<", `${prefix}.`);
  const rows = await query.execute();
  return rows.map((r) => r.path);
}

/** The log entry whose attribute `key` equals `value` (the proposal a model's tool call made). */
export function findLogByAttribute(db: Kysely<Database>, runId: number, key: string, value: string): Promise<EntryRow | undefined> {
  return db
    .selectFrom("entries")
    .selectAll()
    .where("run_id", "=", runId)
    .where("scheme", "=", "log")
    .where(jsonText(db, "attributes", key), "=", value)
    .executeTakeFirst();
}

/**
 * Every proposal waiting for a decision (log entries at `proposed`), with its run and project, oldest first (the
 * deadlines); given `proposedBy`, only that principal's (a revocation withdraws them).
 */
export function listPendingEverywhere(
  db: Kysely<Database>,
  proposed: number,
  proposedBy?: string,
): Promise<{ id: number; path: string; created_at: number; run: string; project_id: number; project: string; root: string }[]> {
  let query = db
    .selectFrom("entries")
    .innerJoin("runs", "runs.id", "entries.run_id")
    .innerJoin("projects", "projects.id", "runs.project_id")
    .select(["entries.id", "entries.path", "entries.created_at", "runs.alias as run", "projects.id as project_id", "projects.name as project", "projects.root"])
    .where("entries.scheme", "=", "log")
    .where("entries.status", "=", proposed);
  // Migration 017's partial index (proposed_by where pending) finds them without reading the rest.
  if (proposedBy !== undefined) query = query.where("entries.proposed_by", "=", proposedBy);
  return query.orderBy("entries.created_at").execute();
}

/**
 * Pending proposals of a run and of a principal's share (the principal's own, and those of every other live credential
 * that counts against the same principal's bounds: migration 024): rows of the counts migration 021's triggers keep
 * (no row: none waits), read in one statement by index lookups alone, whatever the number waiting (sync-lookups.ts
 * prepares the same statement on SQLite).
 */
export async function countPending(db: Kysely<Database>, runId: number, principal: string): Promise<PendingCounts> {
  const { rows } = await sql<{ run: number | string | null; principal: number | string | null; share: string | null }>`SELECT
    coalesce((SELECT "n" FROM "pending_counts" WHERE "scope" = 'run' AND "key" = ${String(runId)}), 0) AS "run",
    coalesce((SELECT "n" FROM "pending_counts" WHERE "scope" = 'principal' AND "key" = ${principal}), 0) + coalesce((
      SELECT sum("c"."n") FROM "principals" AS "p" JOIN "pending_counts" AS "c" ON "c"."scope" = 'principal' AND "c"."key" = "p"."name"
      WHERE "p"."revoked_at" IS NULL AND "p"."name" <> ${principal}
        AND "p"."share" = (SELECT "share" FROM "principals" WHERE "name" = ${principal} AND "revoked_at" IS NULL)
    ), 0) AS "principal",
    (SELECT "share" FROM "principals" WHERE "name" = ${principal} AND "revoked_at" IS NULL) AS "share"`.execute(db);
  return { run: Number(rows[0]?.run ?? 0), principal: Number(rows[0]?.principal ?? 0), share: rows[0]?.share ?? null };
}

/** A run's proposals waiting, its principal's share's, and that share (null: no live principal has the name). */
export interface PendingCounts {
  run: number;
  principal: number;
  share: string | null;
}
