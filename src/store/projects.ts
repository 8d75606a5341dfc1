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
