import type pg from "pg";
import type { ClusterEventTable } from "../schema.js";

/**
 * The SQL of the cluster bus (PostgreSQL only: with SQLite a server is alone
 * and has no bus): announcements in `cluster_events`, NOTIFY on one channel,
 * and each server's liveness as an advisory lock held by its listening
 * session. The bus sends over its own connection, so these take a pg client
 * or pool rather than the store's query builder.
 */

/** A PostgreSQL connection or pool. */
export type PgQueryable = pg.ClientBase | pg.Pool;

export type ClusterEvent = Omit<ClusterEventTable, "id"> & { id: number };
export type NewClusterEvent = Omit<ClusterEventTable, "id">;

/**
 * Stores an event and, in the same statement, sends NOTIFY on `channel` with
 * `prefix` + the new row's id + `suffix` as the payload.
 */
export async function publishEvent(q: PgQueryable, channel: string, event: NewClusterEvent, prefix: string, suffix: string): Promise<void> {
  await q.query(
    `WITH e AS (INSERT INTO cluster_events (server_id, seq, body, created_at, mac) VALUES ($1, $2, $3, $4, $5) RETURNING id)
     SELECT pg_notify($6, $7 || e.id || $8) FROM e`,
    [event.server_id, event.seq, event.body, event.created_at, event.mac, channel, prefix, suffix],
  );
}

/** Sends NOTIFY on `channel` with `payload` alone (chunk marks: nothing is stored). */
export async function notify(q: PgQueryable, channel: string, payload: string): Promise<void> {
  await q.query("SELECT pg_notify($1, $2)", [channel, payload]);
}

export async function readEvent(q: PgQueryable, id: number): Promise<ClusterEvent | null> {
  const result = await q.query<ClusterEvent>("SELECT id, server_id, seq, body, created_at, mac FROM cluster_events WHERE id = $1", [id]);
  const row = result.rows[0];
  return row ? { ...row, id: Number(row.id), server_id: Number(row.server_id), seq: Number(row.seq), created_at: Number(row.created_at) } : null;
}

/** The highest seq stored per server: rows at or below it were written before the caller started listening. */
export async function lastEventSeqs(q: PgQueryable): Promise<Map<number, number>> {
  const result = await q.query<{ server_id: string | number; seq: string | number }>(
    "SELECT server_id, MAX(seq) AS seq FROM cluster_events GROUP BY server_id",
  );
  return new Map(result.rows.map((r) => [Number(r.server_id), Number(r.seq)]));
}

export async function pruneEvents(q: PgQueryable, before: number): Promise<void> {
  await q.query("DELETE FROM cluster_events WHERE created_at < $1", [before]);
}

/** Takes, on the caller's session, the advisory lock (`namespace`, `serverId`) that says the server is alive while the session lasts. */
export async function holdAliveLock(client: pg.ClientBase, namespace: number, serverId: number): Promise<void> {
  await client.query("SELECT pg_advisory_lock($1, $2)", [namespace, serverId]);
}

/** The ids of the servers whose alive lock in `namespace` is held now (in this database). */
export async function aliveServers(q: PgQueryable, namespace: number): Promise<number[]> {
  const result = await q.query<{ id: string | number }>(
    "SELECT objid::bigint AS id FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = $1::oid AND objsubid = 2 AND granted",
    [namespace],
  );
  return result.rows.map((r) => Number(r.id));
}

/** Starts receiving NOTIFY payloads of `channel` on the session (a plain identifier). */
export async function listen(client: pg.ClientBase, channel: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
  await client.query(`LISTEN ${channel}`);
}
