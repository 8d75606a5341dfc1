import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Rows of `cluster_events` are authenticated: servers sharing a database act
 * on them (an accept runs a command), and anyone who can write to the
 * database could otherwise make them. Each row carries an HMAC-SHA256 of its
 * sender, its seq (the sender's count of rows), its time and its body (which
 * holds the message's kind and addressee), under a key derived from the
 * token that the servers share (SPOOL_TOKEN_FILE). The token itself is never
 * used as the key, so a MAC says nothing about it.
 */

/** The bus key: HMAC-SHA256(token, "spool cluster bus"). */
export function busKey(token: string): Buffer {
  return createHmac("sha256", token).update("spool cluster bus").digest();
}

export interface SignedFields {
  server_id: number;
  seq: number;
  created_at: number;
  body: string;
}

/** The MAC of a row (hex): every field is in it, each length-prefixed, so no two rows share one. */
export function signEvent(key: Buffer, row: SignedFields): string {
  const mac = createHmac("sha256", key).update("spool-bus-v1\n");
  for (const field of [String(row.server_id), String(row.seq), String(row.created_at), row.body]) {
    mac.update(`${Buffer.byteLength(field)}:`).update(field);
  }
  return mac.digest("hex");
}

/** Whether `mac` is the row's MAC under `key` (compared in constant time). */
export function verifyEvent(key: Buffer, row: SignedFields, mac: string | null | undefined): boolean {
  if (typeof mac !== "string" || !/^[0-9a-f]{64}$/.test(mac)) return false;
  return timingSafeEqual(Buffer.from(signEvent(key, row), "hex"), Buffer.from(mac, "hex"));
}
