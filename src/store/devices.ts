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

/**
 * How many devices count against the server's bound: not revoked, and paired by a credential that still holds (the
 * home's current one, or a principal's neither revoked nor expired: a revoked principal's devices stop counting at
 * once, whether or not their rows were marked). Devices idle past their end are counted until pruned.
 */
export async function countLiveDevices(db: Kysely<Database>, homeCredential: string | null, now: number): Promise<number> {
  const row = await db
    .selectFrom("devices")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("revoked_at", "is", null)
    .where((eb) =>
      eb.or([
        eb("credential", "=", homeCredential ?? ""),
        eb(
          "credential",
          "in",
          eb
            .selectFrom("principals")
            .select("token_id")
            .where("revoked_at", "is", null)
            .where((p) => p.or([p("expires_at", "is", null), p("expires_at", ">", now)])),
        ),
      ]),
    )
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * The devices that count against a share (core/share-key.ts shareOf), oldest first: not revoked, paired by a live
 * credential of it (for the home's share, by `homeCredential`). Expired ones included: the caller tells.
 */
export function listShareDevices(db: Kysely<Database>, share: string, homeCredential: string | null): Promise<DeviceRow[]> {
  let query = db.selectFrom("devices").selectAll().where("revoked_at", "is", null);
  query =
    homeCredential !== null
      ? query.where("credential", "=", homeCredential)
      : query.where("credential", "in", (eb) => eb.selectFrom("principals").select("token_id").where("share", "=", share).where("revoked_at", "is", null));
  return query.orderBy("id").execute();
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
