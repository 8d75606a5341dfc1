import type { ExpressionBuilder, Kysely } from "kysely";
import { uniquely } from "./errors.js";
import type { Database, EntryRow, NewRun, RunRow, RunUpdate } from "./schema.js";

export function findRun(db: Kysely<Database>, projectId: number, alias: string): Promise<RunRow | undefined> {
  return db.selectFrom("runs").selectAll().where("project_id", "=", projectId).where("alias", "=", alias).executeTakeFirst();
}

export function findRunById(db: Kysely<Database>, id: number): Promise<RunRow | undefined> {
  return db.selectFrom("runs").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Inserts a run; an alias the project already uses is a UniqueViolation. */
export function insertRun(db: Kysely<Database>, run: NewRun): Promise<RunRow> {
  return uniquely("runs", () => db.insertInto("runs").values(run).returningAll().executeTakeFirstOrThrow());
}

export function listRuns(
  db: Kysely<Database>,
  projectId: number,
  filter: { status?: number | undefined; limit: number; before?: number | undefined },
): Promise<RunRow[]> {
  let query = db.selectFrom("runs").selectAll().where("project_id", "=", projectId);
  if (filter.status !== undefined) query = query.where("status", "=", filter.status);
  if (filter.before !== undefined) query = query.where("id", "<", filter.before);
  return query.orderBy("id", "desc").limit(filter.limit).execute();
}

/** How many log entries at `proposed` (proposals waiting for a decision) each of these runs has; runs with none are absent. */
export async function pendingProposals(db: Kysely<Database>, runIds: readonly number[], proposed: number): Promise<Map<number, number>> {
  if (runIds.length === 0) return new Map();
  const rows = await db
    .selectFrom("entries")
    .select(["run_id"])
    .select((eb) => eb.fn.countAll<number>().as("pending"))
    .where("run_id", "in", [...runIds])
    .where("scheme", "=", "log")
    .where("status", "=", proposed)
    .groupBy("run_id")
    .execute();
  return new Map(rows.map((r) => [r.run_id, Number(r.pending)]));
}

/** An entry of these runs' logs at `status`, made since its run's latest prompt (the start of its last loop). */
function logInLastLoop(eb: ExpressionBuilder<Database, "entries">, runIds: readonly number[], status: number) {
  const lastLoop = eb
    .selectFrom("loops")
    .select((l) => l.fn.max("loops.created_at").as("started"))
    .whereRef("loops.run_id", "=", "entries.run_id");
  return eb.and([
    eb("entries.run_id", "in", [...runIds]),
    eb("entries.scheme", "=", "log"),
    eb("entries.status", "=", status),
    eb("entries.created_at", ">=", lastLoop),
  ]);
}

/**
 * How many proposals made since its latest prompt (its last loop's start) each of these runs had rejected (log
 * entries at `rejected`); runs with none are absent.
 */
export async function rejectedInLastLoop(db: Kysely<Database>, runIds: readonly number[], rejected: number): Promise<Map<number, number>> {
  if (runIds.length === 0) return new Map();
  const rows = await db
    .selectFrom("entries")
    .select(["entries.run_id"])
    .select((eb) => eb.fn.countAll<number>().as("rejected"))
    .where((eb) => logInLastLoop(eb, runIds, rejected))
    .groupBy("entries.run_id")
    .execute();
  return new Map(rows.map((r) => [r.run_id, Number(r.rejected)]));
}

/**
 * Each of these runs' latest command accepted since its latest prompt (its log entry at `accepted`, the highest id),
 * which a run's shown state reads its ending from; runs without one are absent.
 */
export async function lastCommandInLastLoop(db: Kysely<Database>, runIds: readonly number[], accepted: number): Promise<Map<number, EntryRow>> {
  if (runIds.length === 0) return new Map();
  const rows = await db
    .selectFrom("entries")
    .selectAll()
    .where(
      "id",
      "in",
      db
        .selectFrom("entries")
        .select((eb) => eb.fn.max("entries.id").as("id"))
        .where((eb) => logInLastLoop(eb, runIds, accepted))
        .groupBy("entries.run_id"),
    )
    .execute();
  return new Map(rows.map((r) => [r.run_id, r]));
}

export async function updateRun(db: Kysely<Database>, id: number, update: RunUpdate): Promise<void> {
  await db
    .updateTable("runs")
    .set({ ...update, updated_at: Date.now() })
    .where("id", "=", id)
    .execute();
}

/** The project's next run number (run-N for runs created without an alias), counted per project. */
export async function nextRunNumber(db: Kysely<Database>, projectId: number): Promise<number> {
  const row = await db
    .updateTable("projects")
    .set((eb) => ({ last_run_number: eb("last_run_number", "+", 1) }))
    .where("id", "=", projectId)
    .returning("last_run_number")
    .executeTakeFirstOrThrow();
  return Number(row.last_run_number);
}

/** Ids of runs with a model whose status is one of `open` (the agent continues them after a restart). */
export async function listOpenModelRuns(db: Kysely<Database>, open: readonly number[]): Promise<number[]> {
  const rows = await db.selectFrom("runs").select("id").where("model", "is not", null).where("status", "in", open).execute();
  return rows.map((r) => r.id);
}
