// Whose bounds a credential counts against (SPEC: Limits, "Per principal"): a credential minted by another
// principal shares the bounds of the one that minted it, and so on up to the principal the home minted, so a
// principal's connections, devices and waiting proposals count what the credentials it minted hold too. `share` is
// that principal's token id (a name may be given again after a revocation; a token id never is). Rows written
// before are given theirs here: the creator of a row is the newest principal of its `created_by` made before it.
import { type SqlBool, sql } from "kysely";
import type { SchemaMigration } from "./columns.js";

/** The name the home's token file acts as (HOME_PRINCIPAL_NAME): what it minted starts a share of its own. */
const HOME = "admin";

export const principalShares: SchemaMigration = {
  async up(db) {
    await db.schema.alterTable("principals").addColumn("share", "text").execute();
    const rows = (await db.selectFrom("principals").select(["id", "name", "token_id", "created_by"]).orderBy("id").execute()) as {
      id: number;
      name: string;
      token_id: string;
      created_by: string;
    }[];
    const newest = new Map<string, string>();
    for (const row of rows) {
      const share = row.created_by === HOME ? row.token_id : (newest.get(row.created_by) ?? row.token_id);
      await db.updateTable("principals").set({ share }).where("id", "=", row.id).execute();
      newest.set(row.name, share);
    }
    await db.schema.createIndex("principals_live_share").on("principals").column("share").where(sql<SqlBool>`revoked_at IS NULL`).execute();
  },
};
