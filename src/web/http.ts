import type { IncomingMessage, ServerResponse } from "node:http";
import { cookieValue, originAllowed, ownOrigin, presentedSessionKey, TOKEN_IN_URL, tokenInUrl } from "../auth.js";
import { readBody as readDoorBody } from "../door/body.js";
import { DoorError } from "../door/errors.js";
import type { Logger } from "../logger.js";
import type { Route } from "../ops/routes.js";
import { pageAssets } from "./assets.js";
import { type SessionGrant, SignInRefused, type WebSessions } from "./sessions.js";

export interface WebOptions {
  sessions: WebSessions;
  /**
   * Who the credential a request presents names (the home's token file, or a principal's token; its bearer token, or
   * the proof a Unix socket's client gives instead) and until when; null when nobody.
   */
  authenticate(request: IncomingMessage): Promise<SessionGrant | null>;
  /**
   * A request on the connection proved who it is (a credential that mints a code, a code redeemed, a paired device's
   * session): the server's deadline for connections that never authenticate no longer cuts it, as at /mcp and /acp.
   */
  authenticated(request: IncomingMessage): void;
  /**
   * The page's address on this server, for the sign-in link of a code minted by `request`: the address the request
   * reached it by (over TCP), or the one it listens on (over its Unix socket) — never one derived from defaults.
   */
  pageUrl(request: IncomingMessage): string;
  allowedOrigins: readonly string[];
  /** Host names besides IP addresses and localhost under which the page is the server's own (the configured host). */
  trustedHosts: readonly string[];
  /** The session cookie's name (it carries the port the request reached the server by). */
  cookieName: (request: IncomingMessage) => string;
  log: Logger;
  /** MCP over Streamable HTTP (src/mcp/http.ts): answers requests to /mcp; its own authentication. */
  mcp?: (request: IncomingMessage, response: ServerResponse) => void;
  /** ACP by URL (src/acp/http.ts): answers requests to /acp; its own authentication. */
  acp?: (request: IncomingMessage, response: ServerResponse) => void;
  /** How long a request's body may take to arrive (limits.bodyDeadlineMs, as at /mcp and /acp). */
  bodyDeadlineMs: number;
  /** Routes served before the page's files (the operator's /healthz, /readyz, /metrics), by path. */
  routes?: ReadonlyMap<string, Route>;
}

/** When each request's headers came (the body's deadline counts from there). */
const arrivals = new WeakMap<IncomingMessage, number>();

/** Largest request body read (a code exchange is a few dozen bytes). */
const MAX_BODY_BYTES = 4096;

const COMMON_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/** Only the page's own files and its own server; xterm.js sets styles inline. */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    /** More of the answer's JSON body beside `error`. */
    readonly body: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * The web view over plain HTTP: the page and its assets (public: they hold no data), and the sign-in
 * endpoints. Data only ever flows over the WebSocket, which needs a credential or a page session (its cookie and its key).
 */
export function createWebHandler(options: WebOptions): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    arrivals.set(request, performance.now());
    handle(options, request, response).catch((error: unknown) => {
      if (error instanceof HttpError) return send(response, error.status, { ...error.body, error: error.message }, error.headers);
      options.log.error("web view: request failed", error);
      send(response, 500, { error: "Internal error" });
    });
  };
}

async function handle(options: WebOptions, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? "/", "http://localhost").pathname;
  const method = request.method ?? "GET";
  if (path === "/mcp" && options.mcp) return options.mcp(request, response);
  if (path === "/acp" && options.acp) return options.acp(request, response);
  if (path === "/session/code") return await mintCode(options, request, response, method);
  if (path === "/session/peek") return await peek(options, request, response, method);
  if (path === "/session") return session(options, request, response, method);
  const route = options.routes?.get(path);
  if (route) return route(request, response);
  const assets = await pageAssets();
  const asset = assets.byPath.get(path);
  if (!asset) throw new HttpError(404, `Not found: ${path}; the page is at /`);
  allow(method, ["GET", "HEAD"]);
  const gzip = /\bgzip\b/.test(String(request.headers["accept-encoding"] ?? ""));
  const headers: Record<string, string> = {
    ...COMMON_HEADERS,
    "Content-Type": asset.type,
    "Cache-Control": asset.immutable ? "public, max-age=31536000, immutable" : "no-cache",
    ETag: asset.etag,
    Vary: "Accept-Encoding",
  };
  if (asset.type.startsWith("text/html")) headers["Content-Security-Policy"] = PAGE_CSP;
  if (request.headers["if-none-match"] === asset.etag) {
    response.writeHead(304, headers).end();
    return;
  }
  const body = gzip ? asset.gzip : asset.body;
  if (gzip) headers["Content-Encoding"] = "gzip";
  headers["Content-Length"] = String(body.length);
  response.writeHead(200, headers).end(method === "HEAD" ? undefined : body);
}

/** POST /session/code with a credential (Authorization header only): a one-time code for `spool open`'s link, for its principal. */
async function mintCode(options: WebOptions, request: IncomingMessage, response: ServerResponse, method: string): Promise<void> {
  allow(method, ["POST"]);
  if (!originAllowed(request, options.allowedOrigins, options.trustedHosts)) throw new HttpError(403, "Origin not allowed");
  if (tokenInUrl(request)) throw new HttpError(401, TOKEN_IN_URL, { "WWW-Authenticate": "Bearer" });
  const grant = await options.authenticate(request);
  if (!grant) throw new HttpError(401, "Missing or wrong token", { "WWW-Authenticate": "Bearer" });
  // A runner's credential reads nothing a page shows: a link would sign a browser in to an empty page that refuses everything.
  if (grant.principal.role === "runner")
    throw new HttpError(
      403,
      `"${grant.principal.name}" is a runner credential: it attaches runners and cannot sign a page in — use a viewer, agent, person or admin credential (spool token create NAME --role viewer)`,
    );
  options.authenticated(request);
  const name = nameIn(await readBody(options, request));
  const { code, expiresAt } = refusedIfFull(() => options.sessions.mintCode(grant, name));
  send(response, 201, { code, expiresAt, expiresInMs: options.sessions.codeTtlMs, url: options.pageUrl(request) });
}

/** A code another server made (421 Misdirected Request): it signs in only there. */
const ELSEWHERE = "This link was made by another Spool server (or by this one before it restarted): its code signs in only on the server that made it";

/**
 * The 421 of a code this server does not hold: with `server`, the page's address of the server sharing its database
 * that made it, when one living did (the page offers to go there); without, nobody it knows (the page says the name
 * a link gives comes from the link, and offers nothing).
 */
async function elsewhere(options: WebOptions, code: string): Promise<HttpError> {
  const server = await options.sessions.madeBy(code);
  return new HttpError(421, ELSEWHERE, {}, server === null ? {} : { server });
}

/** A bound reached: 429 with its words (nothing of anyone else's was ended). */
function refusedIfFull<T>(make: () => T): T {
  try {
    return make();
  } catch (error) {
    if (error instanceof SignInRefused) throw new HttpError(429, error.message, { "Retry-After": "60" });
    throw error;
  }
}

/**
 * POST /session/peek {"code"}: whose a sign-in code is, without spending it, so a page signed in as someone else asks
 * before it trades its device for the code's principal. The server's own page only.
 */
async function peek(options: WebOptions, request: IncomingMessage, response: ServerResponse, method: string): Promise<void> {
  allow(method, ["POST"]);
  const own = ownOrigin(request, options.trustedHosts);
  if (own === null || request.headers.origin !== own) throw new HttpError(403, "Only the server's own page may do this");
  const body = await readBody(options, request);
  const code = codeIn(body);
  const found = code === null ? null : options.sessions.peek(code);
  if (!found && code !== null && options.sessions.madeElsewhere(code)) throw await elsewhere(options, code);
  if (!found) throw new HttpError(404, "This link was not made by this server, has expired or was already used");
  // The page is that principal's device already: the code is spent.
  if (/"spend"\s*:\s*true/.test(body)) options.sessions.spend(code!);
  send(response, 200, { principal: { name: found.principal.name, role: found.principal.role }, expiresAt: found.expiresAt });
}

/** /session: POST exchanges a code for a paired device (cookie + key), GET tells whether the device is signed in and whose, DELETE unpairs it. */
async function session(options: WebOptions, request: IncomingMessage, response: ServerResponse, method: string): Promise<void> {
  allow(method, ["GET", "POST", "DELETE"]);
  const name = options.cookieName(request);
  const cookie = cookieValue(request, name);
  if (method === "GET") {
    const key = presentedSessionKey(request);
    const device = await options.sessions.check(cookie, key, request.socket.remoteAddress ?? null);
    if (!device) {
      // A device that was paired says what ended it (a revoked one is "unpaired", as its open page said), else it never was.
      const ended = await options.sessions.ended(cookie, key);
      const what = ended === "unpaired" ? "This device was unpaired" : ended === "expired" ? "This device's pairing expired" : "This device is not paired";
      throw new HttpError(
        401,
        `${what}: run \`spool open\` on the machine that runs the server (with --qr, a code for a phone's camera) to pair it${ended ? " again" : ""}`,
      );
    }
    options.authenticated(request);
    const { name: who, role } = device.principal;
    return send(response, 200, {
      expiresAt: device.expiresAt,
      credentialExpiresAt: device.credentialExpiresAt,
      principal: { name: who, role },
      device: { id: device.id, name: device.name },
    });
  }
  // Any exchange attempt spends the code it carries, a refused one too: a code another page got to see works for no one.
  const attempted = method === "POST" ? codeIn(await readBody(options, request)) : null;
  const spend = () => attempted !== null && options.sessions.spend(attempted);
  // Only the server's own page may sign in or out (a form or script elsewhere cannot, even on the same site).
  const own = ownOrigin(request, options.trustedHosts);
  if (own === null || request.headers.origin !== own) {
    spend();
    throw new HttpError(403, "Only the server's own page may do this");
  }
  const clear = `${name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
  if (method === "DELETE") {
    // Only the page holding both halves unpairs its device.
    const ended = await options.sessions.unpair(cookie, presentedSessionKey(request));
    if (ended) options.log.info(`web view: device ${ended.id} unpaired itself`, { principal: ended.principal.name, client: "spool-web" });
    return send(response, 204, null, { "Set-Cookie": clear });
  }
  if (!/^application\/json\b/.test(String(request.headers["content-type"] ?? ""))) {
    spend();
    throw new HttpError(415, "Send the code as application/json");
  }
  if (attempted === null) throw new HttpError(400, 'The body must be JSON: {"code": "…"}');
  const address = request.socket.remoteAddress ?? null;
  const userAgent = typeof request.headers["user-agent"] === "string" ? request.headers["user-agent"] : null;
  let signed: Awaited<ReturnType<WebSessions["redeem"]>>;
  try {
    signed = await options.sessions.redeem(attempted, { userAgent, address });
  } catch (error) {
    if (error instanceof SignInRefused) throw new HttpError(429, error.message);
    throw error;
  }
  if (!signed && options.sessions.madeElsewhere(attempted)) throw await elsewhere(options, attempted);
  if (!signed) throw new HttpError(401, "This link has expired or was already used: run `spool open` for a new one");
  options.authenticated(request);
  options.log.info(`web view: a device paired from ${address}`, { principal: signed.device.principal.name, client: "spool-web" });
  // The cookie is one half; the key, which the page keeps in its origin's storage and sends itself, is the other.
  // The cookie lasts as long as the device may (the device's own end is the store's to enforce).
  const maxAge = Math.max(1, Math.floor(((signed.device.credentialExpiresAt ?? Date.now() + COOKIE_MAX_MS) - Date.now()) / 1000));
  send(
    response,
    200,
    { key: signed.key, expiresAt: signed.device.expiresAt, device: { id: signed.device.id, name: signed.device.name } },
    { "Set-Cookie": `${name}=${signed.cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.min(maxAge, COOKIE_MAX_MS / 1000)}` },
  );
}

/** Browsers keep a cookie 400 days at most. */
const COOKIE_MAX_MS = 400 * 24 * 60 * 60 * 1000;

/** The device name a code request's body may carry (`{"name": "…"}`, from `spool open --name`), or null. */
function nameIn(body: string): string | null {
  if (body.trim() === "") return null;
  try {
    const name = (JSON.parse(body) as { name?: unknown } | null)?.name;
    if (name === undefined) return null;
    if (typeof name === "string" && name.trim().length > 0 && name.length <= 64) return name;
  } catch {
    // fall through: refused below
  }
  throw new HttpError(400, 'The body must be empty or JSON: {"name": "…"} (a device name, 1-64 characters)');
}

/** The code a sign-in body carries (`{"code": "…"}`), or null. */
function codeIn(body: string): string | null {
  try {
    const code = (JSON.parse(body) as { code?: unknown } | null)?.code;
    return typeof code === "string" && code.length > 0 && code.length <= 200 ? code : null;
  } catch {
    return null;
  }
}

function allow(method: string, methods: string[]): void {
  if (!methods.includes(method)) throw new HttpError(405, `Method ${method} not allowed`, { Allow: methods.join(", ") });
}

/**
 * A request's body as the doors read theirs (src/door/body.ts): at most MAX_BODY_BYTES (413, the rest read and
 * dropped so the answer reaches the client), arrived whole within bodyDeadlineMs of the request's headers (408, and
 * the connection cut: a body sent a byte at a time holds nothing for minutes).
 */
async function readBody(options: WebOptions, request: IncomingMessage): Promise<string> {
  const ms = options.bodyDeadlineMs;
  const until = (arrivals.get(request) ?? performance.now()) + ms;
  try {
    return (await readDoorBody(request, MAX_BODY_BYTES, { until, ms })).toString("utf8");
  } catch (error) {
    if (error instanceof DoorError) throw new HttpError(error.status, error.message, error.headers);
    throw error;
  }
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const text = body === null ? "" : `${JSON.stringify(body)}\n`;
  response
    .writeHead(status, {
      ...COMMON_HEADERS,
      "Cache-Control": "no-store",
      ...(text ? { "Content-Type": "application/json; charset=utf-8", "Content-Length": String(Buffer.byteLength(text)) } : {}),
      ...headers,
    })
    .end(text);
}
