import type { Kysely } from "kysely";
import { uniquely } from "./errors.js";
import type { Database, ProjectRow } from "./schema.js";

export function findProjectByName(db: Kysely<Database>, name: string): Promise<ProjectRow | undefined> {
  return db.selectFrom("projects").selectAll().where("name", "=", name).executeTakeFirst();
}

export function findProjectById(db: Kysely<Database>, id: number): Promise<ProjectRow | undefined> {
  return db.selectFrom("projects").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function createProject(db: Kysely<Database>, name: string, root: string): Promise<ProjectRow> {
  return uniquely("projects", () => db.insertInto("projects").values({ name, root, created_at: Date.now() }).returningAll().executeTakeFirstOrThrow());
}

/** The project rooted at `root` (the oldest, should two names share one root). */
export function findProjectByRoot(db: Kysely<Database>, root: string): Promise<ProjectRow | undefined> {
  return db.selectFrom("projects").selectAll().where("root", "=", root).orderBy("id").limit(1).executeTakeFirst();
}

/** Every project's name and root (a scoped credential's new root is checked against the others'). */
export function projectRoots(db: Kysely<Database>): Promise<{ name: string; root: string }[]> {
  return db.selectFrom("projects").select(["name", "root"]).orderBy("id").execute();
}

/** Names already taken among `candidates`. */
export async function takenNames(db: Kysely<Database>, candidates: string[]): Promise<Set<string>> {
  if (candidates.length === 0) return new Set();
  const rows = await db.selectFrom("projects").select("name").where("name", "in", candidates).execute();
  return new Set(rows.map((r) => r.name));
}

export interface ProjectSummaryRow {
  name: string;
  root: string;
  created_at: number;
  runs: number;
  open: number;
  waiting: number;
  paused: number;
  updated_at: number | null;
}

/**
 * Every project, by name, with its number of runs, of runs at `open` statuses, of runs waiting on a
 * proposal (with a log entry at `proposed`: a run whose accepted command runs waits on no one, and an idle
 * run fed by hand may wait on a client's proposal), of runs at `paused` (at their budget, waiting for a person
 * too), and when a run last changed.
 */
export async function listProjects(
  db: Kysely<Database>,
  open: readonly number[],
  proposed: number,
  paused: number,
  limit: number,
  /** Only these projects (a scoped credential's); null: all. */
  names: readonly string[] | null = null,
): Promise<ProjectSummaryRow[]> {
  if (names !== null && names.length === 0) return [];
  const rows = await db
    .selectFrom("projects")
    .leftJoin("runs", "runs.project_id", "projects.id")
    .select(["projects.name", "projects.root", "projects.created_at"])
    .select((eb) => [
      eb.fn.count<number>("runs.id").as("runs"),
      eb.fn
        .sum<number>(
          eb
            .case()
            .when("runs.status", "in", [...open])
            .then(1)
            .else(0)
            .end(),
        )
        .as("open"),
      eb.fn
        .sum<number>(
          eb
            .case()
            .when(
              eb.exists(
                eb
                  .selectFrom("entries")
                  .select("entries.id")
                  .whereRef("entries.run_id", "=", "runs.id")
                  .where("entries.status", "=", proposed)
                  .where("entries.scheme", "=", "log"),
              ),
            )
            .then(1)
            .else(0)
            .end(),
        )
        .as("waiting"),
      eb.fn.sum<number>(eb.case().when("runs.status", "=", paused).then(1).else(0).end()).as("paused"),
      eb.fn.max("runs.updated_at").as("updated_at"),
    ])
    .$if(names !== null, (qb) => qb.where("projects.name", "in", [...names!]))
    .groupBy("projects.id")
    .orderBy("projects.name")
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    ...r,
    runs: Number(r.runs),
    open: Number(r.open ?? 0),
    waiting: Number(r.waiting ?? 0),
    paused: Number(r.paused ?? 0),
    updated_at: r.updated_at ?? null,
  }));
}

/** What of a project is still going: runs at `open` statuses, and its entries at `live` ones (proposals waiting, output streaming). */
export async function projectActivity(
  db: Kysely<Database>,
  projectId: number,
  open: readonly number[],
  live: readonly number[],
): Promise<{ runs: number; openRuns: number; liveEntries: number }> {
  const runs = await db
    .selectFrom("runs")
    .where("project_id", "=", projectId)
    .select((eb) => [
      eb.fn.countAll<number>().as("runs"),
      eb.fn
        .sum<number>(
          eb
            .case()
            .when("status", "in", [...open])
            .then(1)
            .else(0)
            .end(),
        )
        .as("open"),
    ])
    .executeTakeFirstOrThrow();
  const entries = await db
    .selectFrom("entries")
    .innerJoin("runs", "runs.id", "entries.run_id")
    .where("runs.project_id", "=", projectId)
    .where("entries.status", "in", [...live])
    .select((eb) => eb.fn.countAll<number>().as("live"))
    .executeTakeFirstOrThrow();
  return { runs: Number(runs.runs), openRuns: Number(runs.open ?? 0), liveEntries: Number(entries.live) };
}

/** Removes a project; its runs, entries, chunks, rules and runner names go with it (ON DELETE CASCADE). Whether it was there. */
export async function deleteProject(db: Kysely<Database>, projectId: number): Promise<boolean> {
  const result = await db.deleteFrom("projects").where("id", "=", projectId).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
