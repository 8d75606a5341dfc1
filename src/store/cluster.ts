import { type Kysely, sql } from "kysely";
import { isPostgres } from "./dialect.js";
import type { Database, EntryRow } from "./schema.js";

/** The transaction lock under which orphaned producers are adopted and run leases taken: one server decides at a time. */
const DECIDE_LOCK = 0x5370_6f6f; // "Spoo"

/** Runs `work` in a transaction that holds the decision lock (SQLite: its single writer already is one). */
function decided<T>(db: Kysely<Database>, work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    if (isPostgres(db)) await sql`SELECT pg_advisory_xact_lock(${DECIDE_LOCK})`.execute(trx);
    return work(trx);
  });
}

/** Records a server start; its id names the server in the other cluster tables. */
export async function registerServer(db: Kysely<Database>, server: { url: string; host: string; pid: number }): Promise<number> {
  const row = await db
    .insertInto("servers")
    .values({ ...server, started_at: Date.now() })
    .returning("id")
    .executeTakeFirstOrThrow();
  return row.id;
}

/** The server's listening address, once it is known (it registers before it listens). */
export async function setServerUrl(db: Kysely<Database>, id: number, url: string): Promise<void> {
  await db.updateTable("servers").set({ url }).where("id", "=", id).execute();
}

export function listServers(db: Kysely<Database>, ids: readonly number[]) {
  if (ids.length === 0) return Promise.resolve([]);
  return db.selectFrom("servers").selectAll().where("id", "in", ids).orderBy("id").execute();
}

/** `serverId` holds the producer's owner connection now. */
export async function setOwner(db: Kysely<Database>, producerId: number, serverId: number): Promise<void> {
  await db
    .insertInto("producer_owners")
    .values({ producer_id: producerId, server_id: serverId, since: Date.now() })
    .onConflict((oc) => oc.column("producer_id").doUpdateSet({ server_id: serverId, since: Date.now() }))
    .execute();
}

/** The producer finished: nobody owns it any more. */
export async function dropOwner(db: Kysely<Database>, producerId: number): Promise<void> {
  await db.deleteFrom("producer_owners").where("producer_id", "=", producerId).execute();
}

/** The server whose connection owns the producer (null: none recorded). */
export async function ownerServer(db: Kysely<Database>, producerId: number): Promise<number | null> {
  const row = await db.selectFrom("producer_owners").select("server_id").where("producer_id", "=", producerId).executeTakeFirst();
  return row?.server_id ?? null;
}

/**
 * Takes over, for `me`, every producer that still has a channel at `open` and
 * whose owner's server is not among `alive` (or that has no owner row): one
 * server decides, under the decision lock, so each orphan is adopted once.
 */
export function adoptOrphans(db: Kysely<Database>, me: number, alive: readonly number[], open: number): Promise<number[]> {
  return decided(db, async (trx) => {
    const open_ = await trx.selectFrom("entries").select("producer_id").distinct().where("status", "=", open).where("producer_id", "is not", null).execute();
    const ids = open_.map((r) => r.producer_id as number);
    if (ids.length === 0) return [];
    const owned = await trx.selectFrom("producer_owners").select(["producer_id", "server_id"]).where("producer_id", "in", ids).execute();
    const living = new Set([...alive, me]);
    const held = new Set(owned.filter((o) => living.has(o.server_id)).map((o) => o.producer_id));
    const orphans = ids.filter((id) => !held.has(id));
    const now = Date.now();
    for (const id of orphans) {
      await trx
        .insertInto("producer_owners")
        .values({ producer_id: id, server_id: me, since: now })
        .onConflict((oc) => oc.column("producer_id").doUpdateSet({ server_id: me, since: now }))
        .execute();
    }
    return orphans;
  });
}

/**
 * Leases a run's agent loop to `me` unless a living server other than `me` holds it: null when `me` has it
 * now, else the holder's id.
 */
export function acquireLease(db: Kysely<Database>, runId: number, me: number, alive: readonly number[]): Promise<number | null> {
  return decided(db, async (trx) => {
    const row = await trx.selectFrom("run_leases").select("server_id").where("run_id", "=", runId).executeTakeFirst();
    if (row && row.server_id !== me && alive.includes(row.server_id)) return row.server_id;
    const now = Date.now();
    await trx
      .insertInto("run_leases")
      .values({ run_id: runId, server_id: me, since: now })
      .onConflict((oc) => oc.column("run_id").doUpdateSet({ server_id: me, since: now }))
      .execute();
    return null;
  });
}

export async function releaseLease(db: Kysely<Database>, runId: number, me: number): Promise<void> {
  await db.deleteFrom("run_leases").where("run_id", "=", runId).where("server_id", "=", me).execute();
}

/** Runs whose lease a server that is not alive holds (their loop stopped with it). */
export async function orphanedLeases(db: Kysely<Database>, alive: readonly number[]): Promise<number[]> {
  const rows = await db.selectFrom("run_leases").select(["run_id", "server_id"]).execute();
  return rows.filter((r) => !alive.includes(r.server_id)).map((r) => r.run_id);
}

/** The runner `name` of the project is attached to `serverId` now; `info` is what it said at attach (JSON), for the other servers. */
export async function placeRunner(db: Kysely<Database>, projectId: number, name: string, serverId: number, isDefault: boolean, info = "{}"): Promise<void> {
  const now = Date.now();
  await db
    .insertInto("runner_locations")
    .values({ project_id: projectId, name, server_id: serverId, is_default: isDefault ? 1 : 0, since: now, info })
    .onConflict((oc) => oc.columns(["project_id", "name"]).doUpdateSet({ server_id: serverId, is_default: isDefault ? 1 : 0, since: now, info }))
    .execute();
}

/** The runners of a project listed by the servers they are attached to (each server lists its own; embedded ones are not listed). */
export async function listRunnerLocations(
  db: Kysely<Database>,
  projectId: number,
): Promise<{ name: string; server_id: number; is_default: number; since: number; info: string }[]> {
  return db
    .selectFrom("runner_locations")
    .select(["name", "server_id", "is_default", "since", "info"])
    .where("project_id", "=", projectId)
    .orderBy("name")
    .execute();
}

/** The runner left `serverId` (a row another server has taken since stays). */
export async function unplaceRunner(db: Kysely<Database>, projectId: number, name: string, serverId: number): Promise<void> {
  await db.deleteFrom("runner_locations").where("project_id", "=", projectId).where("name", "=", name).where("server_id", "=", serverId).execute();
}

/** The living server the runner `name` (null: the project's default runner) is attached to, and its name. */
export async function findRunner(
  db: Kysely<Database>,
  projectId: number,
  name: string | null,
  alive: readonly number[],
): Promise<{ name: string; server_id: number } | null> {
  let query = db.selectFrom("runner_locations").select(["name", "server_id"]).where("project_id", "=", projectId);
  query = name === null ? query.where("is_default", "=", 1) : query.where("name", "=", name);
  const rows = await query.execute();
  return rows.find((r) => alive.includes(r.server_id)) ?? null;
}

/**
 * Pending proposals (log entries at `proposed`) recorded for the embedded runner of a server that is not among
 * `alive`: re-recorded for `me` (`runnerServer`) with their facts revision one higher, under the decision lock so
 * one server does it once. Returns the rows as they are now, for announcing them again.
 */
export function moveProposals(db: Kysely<Database>, me: { id: number; label: string }, alive: readonly number[], proposed: number): Promise<EntryRow[]> {
  return decided(db, async (trx) => {
    const pending = await trx.selectFrom("entries").selectAll().where("status", "=", proposed).where("path", "like", "log://%").execute();
    const living = new Set([...alive, me.id]);
    const moved: EntryRow[] = [];
    for (const row of pending) {
      const attributes = JSON.parse(row.attributes) as Record<string, unknown>;
      const server = attributes.runnerServer as { id?: unknown } | undefined;
      const own = (attributes.runnerClaim as { own?: unknown } | undefined)?.own === true;
      if (!own || typeof server?.id !== "number" || living.has(server.id)) continue;
      const revision = typeof attributes.factsRevision === "number" ? attributes.factsRevision : 1;
      const next = { ...attributes, runnerServer: { id: me.id, label: me.label }, factsRevision: revision + 1 };
      const updated_at = Date.now();
      await trx
        .updateTable("entries")
        .set({ attributes: JSON.stringify(next), updated_at })
        .where("id", "=", row.id)
        .where("status", "=", proposed)
        .execute();
      moved.push({ ...row, attributes: JSON.stringify(next), updated_at });
    }
    return moved;
  });
}

/**
 * A pending proposal (log entry `entryId` at `proposed`) whose runner no longer makes the claim recorded with it:
 * re-recorded with `claim` and its facts revision one higher, under the decision lock. Returns the row as it is
 * now, or null when it was decided (or is gone) meanwhile.
 */
export function reclaimProposal(db: Kysely<Database>, entryId: number, claim: unknown, proposed: number): Promise<EntryRow | null> {
  return decided(db, async (trx) => {
    const row = await trx.selectFrom("entries").selectAll().where("id", "=", entryId).where("status", "=", proposed).executeTakeFirst();
    if (!row) return null;
    const attributes = JSON.parse(row.attributes) as Record<string, unknown>;
    const revision = typeof attributes.factsRevision === "number" ? attributes.factsRevision : 1;
    const next = JSON.stringify({ ...attributes, runnerClaim: claim, factsRevision: revision + 1 });
    const updated_at = Date.now();
    await trx.updateTable("entries").set({ attributes: next, updated_at }).where("id", "=", row.id).where("status", "=", proposed).execute();
    return { ...row, attributes: next, updated_at };
  });
}
