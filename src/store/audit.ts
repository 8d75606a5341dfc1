import type { Kysely } from "kysely";
import type { AuditRow, Database } from "./schema.js";

/** Acts since `since` (ms), oldest first, of one project when named, after id `after`, at most `limit`. */
export function listAudit(
  db: Kysely<Database>,
  filter: {
    since: number;
    project?: string | undefined;
    after?: number | undefined;
    limit: number;
    /** A scoped reader's: only acts in these projects, and its own acts. */
    within?: { projects: readonly string[]; principal: string } | undefined;
  },
): Promise<AuditRow[]> {
  let query = db.selectFrom("audit").selectAll().where("at", ">=", filter.since);
  const within = filter.within;
  if (within) query = query.where((eb) => eb.or([eb("project", "in", [...within.projects]), eb("principal", "=", within.principal)]));
  if (filter.project !== undefined) query = query.where("project", "=", filter.project);
  if (filter.after !== undefined) query = query.where("id", ">", filter.after);
  return query.orderBy("id").limit(filter.limit).execute();
}
