import type { Kysely } from "kysely";
import type { Database, DeviceRow, NewDevice } from "./schema.js";

/** Stores a newly paired device. */
export function insertDevice(db: Kysely<Database>, row: NewDevice): Promise<DeviceRow> {
  return db.insertInto("devices").values(row).returningAll().executeTakeFirstOrThrow();
}

/** The device of that public id (revoked or not: the caller decides). */
export function findDevice(db: Kysely<Database>, deviceId: string): Promise<DeviceRow | undefined> {
  return db.selectFrom("devices").selectAll().where("device_id", "=", deviceId).executeTakeFirst();
}

/** Devices not revoked (expired ones included: the caller tells), of one principal or of all, oldest first. */
export function listDevices(db: Kysely<Database>, principal: string | null): Promise<DeviceRow[]> {
  let query = db.selectFrom("devices").selectAll().where("revoked_at", "is", null);
  if (principal !== null) query = query.where("principal", "=", principal);
  return query.orderBy("id").execute();
}

/** How many devices are not revoked, all principals together (expired ones counted until pruned). */
export async function countLiveDevices(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom("devices")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("revoked_at", "is", null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Marks these devices revoked (the ones still live); the rows revoked now. */
export function revokeDevices(db: Kysely<Database>, deviceIds: readonly string[], at: number): Promise<DeviceRow[]> {
  if (deviceIds.length === 0) return Promise.resolve([]);
  return db.updateTable("devices").set({ revoked_at: at }).where("device_id", "in", deviceIds).where("revoked_at", "is", null).returningAll().execute();
}

/** Records a use: when, and from which address. */
export async function touchDevice(db: Kysely<Database>, deviceId: string, at: number, address: string | null): Promise<void> {
  await db.updateTable("devices").set({ last_seen_at: at, last_address: address }).where("device_id", "=", deviceId).execute();
}
