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

/** Every runner name of the project, the principal it belongs to, and whether it is drained. */
export async function listRunnerNames(db: Kysely<Database>, projectId: number): Promise<{ name: string; principal: string; draining: boolean }[]> {
  const rows = await db.selectFrom("runner_names").select(["name", "principal", "draining"]).where("project_id", "=", projectId).orderBy("name").execute();
  return rows.map((r) => ({ name: r.name, principal: r.principal, draining: r.draining === 1 }));
}

/** spool runners drain NAME (`draining` true) or its undoing; false when the project has no runner of that name. */
export async function setDraining(db: Kysely<Database>, projectId: number, name: string, draining: boolean): Promise<boolean> {
  const changed = await db
    .updateTable("runner_names")
    .set({ draining: draining ? 1 : 0 })
    .where("project_id", "=", projectId)
    .where("name", "=", name)
    .executeTakeFirst();
  return Number(changed.numUpdatedRows) > 0;
}

/** Whether the runner name is drained (it takes nothing new, wherever it attaches). */
export async function isDraining(db: Kysely<Database>, projectId: number, name: string): Promise<boolean> {
  const row = await db.selectFrom("runner_names").select("draining").where("project_id", "=", projectId).where("name", "=", name).executeTakeFirst();
  return row?.draining === 1;
}

/** The principal the runner name belongs to in the project (the first to attach under it); null: no runner was ever attached under it. */
export async function runnerNameOwner(db: Kysely<Database>, projectId: number, name: string): Promise<string | null> {
  const row = await db.selectFrom("runner_names").select("principal").where("project_id", "=", projectId).where("name", "=", name).executeTakeFirst();
  return row?.principal ?? null;
}
