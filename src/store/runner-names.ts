import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * The principal `name` belongs to in the project: the one recorded, or `principal` when the name was free (it is
 * recorded now). Two servers claiming a free name at once: the unique index lets one row in, and both read it.
 */
export async function claimRunnerName(db: Kysely<Database>, projectId: number, name: string, principal: string, now: number): Promise<string> {
  await db
    .insertInto("runner_names")
    .values({ project_id: projectId, name, principal, created_at: now })
    .onConflict((oc) => oc.columns(["project_id", "name"]).doNothing())
    .execute();
  const row = await db.selectFrom("runner_names").select("principal").where("project_id", "=", projectId).where("name", "=", name).executeTakeFirst();
  return row?.principal ?? principal;
}

/** Every runner name of the project and the principal it belongs to. */
export async function listRunnerNames(db: Kysely<Database>, projectId: number): Promise<{ name: string; principal: string }[]> {
  return db.selectFrom("runner_names").select(["name", "principal"]).where("project_id", "=", projectId).orderBy("name").execute();
}
