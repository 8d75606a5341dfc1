import type { Kysely } from "kysely";
import type { Database, NewRun, RunRow, RunUpdate } from "./schema.js";

export function findRun(db: Kysely<Database>, projectId: number, alias: string): Promise<RunRow | undefined> {
  return db.selectFrom("runs").selectAll().where("project_id", "=", projectId).where("alias", "=", alias).executeTakeFirst();
}

export function findRunById(db: Kysely<Database>, id: number): Promise<RunRow | undefined> {
  return db.selectFrom("runs").selectAll().where("id", "=", id).executeTakeFirst();
}

export function insertRun(db: Kysely<Database>, run: NewRun): Promise<RunRow> {
  return db.insertInto("runs").values(run).returningAll().executeTakeFirstOrThrow();
}

export function listRuns(
  db: Kysely<Database>,
  projectId: number,
  filter: { status?: number; limit: number; before?: number },
): Promise<RunRow[]> {
  let query = db.selectFrom("runs").selectAll().where("project_id", "=", projectId);
  if (filter.status !== undefined) query = query.where("status", "=", filter.status);
  if (filter.before !== undefined) query = query.where("id", "<", filter.before);
  return query.orderBy("id", "desc").limit(filter.limit).execute();
}

export async function updateRun(db: Kysely<Database>, id: number, update: RunUpdate): Promise<void> {
  await db.updateTable("runs").set({ ...update, updated_at: Date.now() }).where("id", "=", id).execute();
}

/** The highest run id so far, used to name runs created without an alias. */
export async function maxRunId(db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom("runs").select((eb) => eb.fn.max("id").as("max")).executeTakeFirst();
  return Number(row?.max ?? 0);
}
