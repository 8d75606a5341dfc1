import { randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { BlockList, isIP } from "node:net";
import { dirname } from "node:path";
import { SESSION_KEY_HEADER, SUBPROTOCOL_SESSION_PREFIX } from "./protocol/page-session.js";

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

/** The WebSocket subprotocol a browser client offers (with SUBPROTOCOL_TOKEN_PREFIX + its token); the server answers with it. */
export const SUBPROTOCOL = "spool";
/** Browsers cannot set headers on a WebSocket: they may offer `spool.bearer.<token>` as a subprotocol instead. */
export const SUBPROTOCOL_TOKEN_PREFIX = "spool.bearer.";

/** Why a request with the token in its URL is refused (URLs end up in logs, shell history and Referer headers). */
export const TOKEN_IN_URL =
  "The token is not accepted in the URL (?token=): URLs end up in logs and shell history. Send it as Authorization: Bearer <token> (a browser WebSocket: the subprotocol spool.bearer.<token>)";

/** Whether the request's URL carries a `token` query parameter (refused whatever else it carries). */
export function tokenInUrl(request: IncomingMessage): boolean {
  return new URL(request.url ?? "/", "http://localhost").searchParams.has("token");
}

/**
 * The token a client presented: `Authorization: Bearer …`, or (WebSocket upgrades only, where browsers cannot
 * set headers) the subprotocol `spool.bearer.…`. Never the URL (see tokenInUrl).
 */
export function presentedToken(request: IncomingMessage, options: { subprotocol?: boolean } = {}): string | null {
  const header = request.headers.authorization;
  if (header?.startsWith("Bearer ")) return header.slice("Bearer ".length).trim();
  if (!options.subprotocol) return null;
  for (const offered of String(request.headers["sec-websocket-protocol"] ?? "").split(",")) {
    const protocol = offered.trim();
    if (protocol.startsWith(SUBPROTOCOL_TOKEN_PREFIX)) return protocol.slice(SUBPROTOCOL_TOKEN_PREFIX.length);
  }
  return null;
}

export function tokensMatch(expected: string, presented: string | null): boolean {
  if (presented === null) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Browsers always send Origin; other clients usually do not. A present Origin must be allowed explicitly,
 * or be the server's own (its web view's page, see ownOrigin).
 */
export function originAllowed(request: IncomingMessage, allowed: readonly string[], trustedHosts: readonly string[] = []): boolean {
  const origin = request.headers.origin;
  return origin === undefined || allowed.includes(origin) || origin === ownOrigin(request, trustedHosts);
}

/**
 * The origin of this server's own page as the browser reached it: `http://` + the Host header. Only a host
 * that is an IP address, `localhost` or one of `trustedHosts` (the configured host) counts: any other name
 * could be pointed at this server by someone else's page (DNS rebinding); list such origins in allowedOrigins.
 */
export function ownOrigin(request: IncomingMessage, trustedHosts: readonly string[] = []): string | null {
  const host = request.headers.host;
  if (!host) return null;
  let url: URL;
  try {
    url = new URL(`http://${host}`);
  } catch {
    return null;
  }
  if (url.username || url.password || url.pathname !== "/" || `${url.host}` !== host.toLowerCase()) return null;
  const bare = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const trusted = isIP(bare) !== 0 || /^localhost$/i.test(bare) || trustedHosts.some((h) => h.toLowerCase() === bare.toLowerCase());
  return trusted ? url.origin : null;
}

/**
 * A page's session cookie: named after the port, since browsers share a host's cookies between its ports (so a
 * page on another port gets it too: it is half a session, useless without the page's key, see presentedSessionKey).
 */
export function sessionCookieName(port: number): string {
  return `spool_session_${port}`;
}

/** The page's session key a request presents: the header, or (WebSocket upgrades, where a page cannot set headers) the subprotocol. */
export function presentedSessionKey(request: IncomingMessage, options: { subprotocol?: boolean } = {}): string | null {
  const header = request.headers[SESSION_KEY_HEADER];
  if (typeof header === "string" && header.length > 0) return header.trim();
  if (!options.subprotocol) return null;
  for (const offered of String(request.headers["sec-websocket-protocol"] ?? "").split(",")) {
    const protocol = offered.trim();
    if (protocol.startsWith(SUBPROTOCOL_SESSION_PREFIX)) return protocol.slice(SUBPROTOCOL_SESSION_PREFIX.length);
  }
  return null;
}

/** The value of one cookie of a request, or null. */
export function cookieValue(request: IncomingMessage, name: string): string | null {
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
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
