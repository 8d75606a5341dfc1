// Principals: who a credential (other than the home's token file, the admin) names, its role and its scope. Only a
// hash of the token's secret is kept: a token is spool_<token_id>_<secret>, looked up by token_id and compared as
// sha256(secret) in constant time (src/core/credentials/principals.ts). A revoked principal's row stays (its name is on the
// proposals and decisions it made); its name may be given again to a new principal.
import { type SqlBool, sql } from "kysely";
import { id, required, type SchemaMigration, types } from "./columns.js";

export const principals: SchemaMigration = {
  async up(db, dialect) {
    const t = types(dialect);
    await db.schema
      .createTable("principals")
      .addColumn("id", t.big, id(dialect))
      .addColumn("name", "text", required)
      .addColumn("role", "text", (c) => c.notNull().check(sql`role IN ('runner', 'viewer', 'agent', 'person', 'admin')`))
      .addColumn("projects", "text")
      .addColumn("token_id", "text", (c) => c.notNull().unique())
      .addColumn("secret_hash", "text", required)
      .addColumn("created_by", "text", required)
      .addColumn("created_at", t.big, required)
      .addColumn("expires_at", t.big)
      .addColumn("revoked_at", t.big)
      .execute();
    await db.schema.createIndex("principals_live_name").on("principals").column("name").unique().where(sql<SqlBool>`revoked_at IS NULL`).execute();
  },
};
