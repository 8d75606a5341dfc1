// The audit trail keeps the transport the server verified for an act's connection (the home's Unix socket, TCP with
// the server's proof, a page session, the server's own /mcp or /acp) beside the client the caller claims, as a column
// of its own: `client` alone was whatever the caller put in initialize. Rows written before have none (null).
import type { SchemaMigration } from "./columns.js";

export const auditTransport: SchemaMigration = {
  async up(db) {
    await db.schema.alterTable("audit").addColumn("transport", "text").execute();
  },
};
