import type { Kysely } from "kysely";
import { uniquely } from "./errors.js";
import type { Database, NewPrincipal, PrincipalRow } from "./schema.js";

/** Stores a principal; a name a live (unrevoked) principal holds is a UniqueViolation. */
export function insertPrincipal(db: Kysely<Database>, row: NewPrincipal): Promise<PrincipalRow> {
  return uniquely("principals", () => db.insertInto("principals").values(row).returningAll().executeTakeFirstOrThrow());
}

/** The principal a token's id names (revoked or not: the caller decides). */
export function findPrincipalByTokenId(db: Kysely<Database>, tokenId: string): Promise<PrincipalRow | undefined> {
  return db.selectFrom("principals").selectAll().where("token_id", "=", tokenId).executeTakeFirst();
}

/** The live principal of that name. */
export function findLivePrincipal(db: Kysely<Database>, name: string): Promise<PrincipalRow | undefined> {
  return db.selectFrom("principals").selectAll().where("name", "=", name).where("revoked_at", "is", null).executeTakeFirst();
}

/**
 * Whether the newest principal of that name is revoked: false when none has it (the home's token, a model's
 * proposals) and when a live one holds the name again.
 */
export async function principalRevoked(db: Kysely<Database>, name: string): Promise<boolean> {
  const row = await db.selectFrom("principals").select("revoked_at").where("name", "=", name).orderBy("id", "desc").limit(1).executeTakeFirst();
  return row !== undefined && row.revoked_at !== null;
}

/** Principals, oldest first; revoked ones only when asked. */
export function listPrincipals(db: Kysely<Database>, options: { revoked: boolean }): Promise<PrincipalRow[]> {
  let query = db.selectFrom("principals").selectAll();
  if (!options.revoked) query = query.where("revoked_at", "is", null);
  return query.orderBy("id").execute();
}

/** Marks the live principal of that name revoked; the row revoked, or undefined when none was live. */
export function revokePrincipal(db: Kysely<Database>, name: string, at: number): Promise<PrincipalRow | undefined> {
  return db.updateTable("principals").set({ revoked_at: at }).where("name", "=", name).where("revoked_at", "is", null).returningAll().executeTakeFirst();
}

/**
 * The live principals `name` minted after row `afterId` (the live holder of the name: an earlier holder's, revoked with
 * it, are not its; row ids, not clocks, so servers whose clocks differ agree).
 */
export function listLiveMintedBy(db: Kysely<Database>, name: string, afterId: number): Promise<PrincipalRow[]> {
  return db
    .selectFrom("principals")
    .selectAll()
    .where("created_by", "=", name)
    .where("id", ">", afterId)
    .where("revoked_at", "is", null)
    .orderBy("id")
    .execute();
}

/** How many live principals count against `share` (the credentials minted under it, and its own). */
export async function countLiveInShare(db: Kysely<Database>, share: string): Promise<number> {
  const row = await db
    .selectFrom("principals")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("share", "=", share)
    .where("revoked_at", "is", null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
