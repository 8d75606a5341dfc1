import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** A fresh resume token: what an owner shows to take its producers back after a reconnect. */
export const newResumeToken = (): string => randomBytes(24).toString("base64url");

/** What the store keeps of a resume token (never the token itself). */
export const tokenKey = (token: string): string => createHash("sha256").update(token).digest("hex");

/** Whether `token` is the one whose key is `key` (constant time). */
export function tokenMatches(token: string | undefined, key: unknown): boolean {
  if (token === undefined || typeof key !== "string") return false;
  const a = Buffer.from(tokenKey(token));
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}
