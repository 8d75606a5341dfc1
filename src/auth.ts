import { randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { BlockList, isIP } from "node:net";
import { dirname } from "node:path";

/** Reads the bearer token, creating it (mode 0600) on first start. */
export function ensureToken(file: string): string {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  if (!existsSync(file)) {
    writeFileSync(file, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  }
  chmodSync(file, 0o600);
  const token = readFileSync(file, "utf8").trim();
  if (token.length < 16) throw new Error(`Token file ${file} holds no usable token; delete it to have a new one created`);
  return token;
}

/** The token a client presented: `Authorization: Bearer …` or `?token=…`. */
export function presentedToken(request: IncomingMessage): string | null {
  const header = request.headers.authorization;
  if (header?.startsWith("Bearer ")) return header.slice("Bearer ".length).trim();
  const url = new URL(request.url ?? "/", "http://localhost");
  return url.searchParams.get("token");
}

export function tokensMatch(expected: string, presented: string | null): boolean {
  if (presented === null) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Browsers always send Origin; other clients usually do not. A present Origin must be allowed explicitly. */
export function originAllowed(request: IncomingMessage, allowed: readonly string[]): boolean {
  const origin = request.headers.origin;
  return origin === undefined || allowed.includes(origin);
}

/** Loopback addresses: 127.0.0.0/8 and ::1 (an IPv4-mapped ::ffff:127.x.y.z counts as its IPv4 address). */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * Whether a host names this machine's loopback interface: "localhost", an
 * address in 127.0.0.0/8, ::1 or ::ffff:127.x.y.z (brackets allowed around
 * IPv6). Parsed, not prefix-matched: "127.example.com" or "::10" are not.
 */
export function isLoopback(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (/^localhost\.?$/i.test(bare)) return true;
  // An IPv6 zone (fe80::1%eth0) never names loopback; isIP refuses it anyway.
  const family = isIP(bare);
  if (family === 0) return false;
  return LOOPBACK.check(bare, family === 4 ? "ipv4" : "ipv6");
}
