import type { Kysely } from "kysely";
import type { AuditRow, Database } from "./schema.js";

/** Acts since `since` (ms), oldest first, of one project when named, after id `after`, at most `limit`. */
export function listAudit(
  db: Kysely<Database>,
  filter: { since: number; project?: string | undefined; after?: number | undefined; limit: number },
): Promise<AuditRow[]> {
  let query = db.selectFrom("audit").selectAll().where("at", ">=", filter.since);
  if (filter.project !== undefined) query = query.where("project", "=", filter.project);
  if (filter.after !== undefined) query = query.where("id", ">", filter.after);
  return query.orderBy("id").limit(filter.limit).execute();
}
