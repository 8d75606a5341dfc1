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

/** Names already taken among `candidates`. */
export async function takenNames(db: Kysely<Database>, candidates: string[]): Promise<Set<string>> {
  if (candidates.length === 0) return new Set();
  const rows = await db.selectFrom("projects").select("name").where("name", "in", candidates).execute();
  return new Set(rows.map((r) => r.name));
}
