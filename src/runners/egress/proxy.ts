import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, createServer, isIP, type Server, type Socket } from "node:net";
import { EGRESS_BLOCKED_HEADER, EGRESS_BLOCKED_VALUE, hostProblem, normalHost, shownHost } from "../../protocol/egress.js";
import type { EgressPolicy, EgressVerdict } from "./policy.js";
import { readClientHello } from "./tls-client-hello.js";

/**
 * The egress proxy of a sandboxed command in network mode `allowlist` (SPEC §7 Runners, "Sandbox modes"): its own
 * process outside the sandbox, listening on one Unix socket that is bound into the sandbox. It speaks HTTP (CONNECT
 * and plain requests with an absolute URL) and SOCKS5 (CONNECT), told apart by the first byte. Deny by default: it
 * connects only to a host on the list, resolving the name itself (the command's own resolver reaches nothing), and
 * never to a private, loopback or link-local address unless the list names that address.
 *
 * What reaches the host is what was allowed (SPEC §7 Runners, "What the egress proxy checks"): every host a request names
 * is checked as a host name before any rule is matched (hostProblem); a plain HTTP request's `Host` header must name
 * the host it goes to; and the first bytes a client sends through a tunnel (CONNECT, SOCKS5), on any port, are read
 * before they go on: a TLS ClientHello must name the host the tunnel was opened for (an address's tunnel: any name), a
 * plain HTTP request goes through the same `Host` check (every request of the connection), anything else passes. TLS
 * is never decrypted: what a client says inside it is the host's business.
 */

/** Starts the proxy on `socketPath`; resolves once it listens. */
export function startEgressProxy(socketPath: string, policy: EgressPolicy): Promise<Server> {
  const tunnels = new WeakMap<Socket, Tunnel>();
  const inTunnels = tunnelHttp(policy, tunnels);
  const http = createHttpServer({ requestTimeout: 0, headersTimeout: 60_000 });
  http.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => void connectTunnel(policy, req, socket, head, (t) => hand(inTunnels, tunnels, t)));
  http.on("request", (req: IncomingMessage, res: ServerResponse) => void forward(policy, req, res));
  http.on("clientError", unreadable);
  const server = createServer((socket) => {
    socket.on("error", () => socket.destroy());
    socket.once("readable", () => {
      const first: Buffer | null = socket.read(1);
      if (first === null) return socket.destroy();
      socket.unshift(first);
      if (first[0] === 5) socks(policy, socket, (t) => hand(inTunnels, tunnels, t));
      else http.emit("connection", socket);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve(server));
  });
}

/** `host:port` as a person reads it (IPv6 in brackets; a name that is none escaped). */
const targetText = (host: string, port: number) => `${isIP(host) === 6 ? `[${host}]` : shownHost(host)}:${port}`;

/** `host[:port]` split, the host as written (brackets kept off); null: not that shape, or a port out of range. */
function splitHostPort(authority: string, defaultPort: number): { host: string; port: number } | null {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(authority);
  if (!match) return null;
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  const host = match[1]!.startsWith("[") ? match[1]!.slice(1, -1) : match[1]!;
  return port >= 1 && port <= 65535 ? { host, port } : null;
}

function refuseHttp(socket: Socket, status: number, body: string): void {
  const head = [`HTTP/1.1 ${status} ${status === 403 ? "Forbidden" : "Bad Request"}`, "content-type: text/plain; charset=utf-8"];
  if (status === 403) head.push(`${EGRESS_BLOCKED_HEADER}: ${EGRESS_BLOCKED_VALUE}`);
  head.push(`content-length: ${Buffer.byteLength(body)}`, "connection: close");
  socket.end(`${head.join("\r\n")}\r\n\r\n${body}`);
}

/**
 * A request Node's parser refuses (a NUL or another control byte in the request line or a header, a malformed line):
 * 400, saying so, where nothing was answered on the connection yet; nothing is passed on either way.
 */
function unreadable(error: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable || socket.bytesWritten > 0) return void socket.destroy();
  refuseHttp(socket, 400, `spool egress proxy: not an HTTP request it can read (${error.code ?? error.message}): nothing was passed on\n`);
}

/** A tunnel the list allowed: its client, the connection to the host, and what was decided. */
interface Tunnel {
  client: Socket;
  upstream: Socket;
  /** The host as the rules compare it (normalHost), and the port. */
  host: string;
  port: number;
  text: string;
  verdict: Extract<EgressVerdict, { ok: true }>;
}

async function connectTunnel(policy: EgressPolicy, req: IncomingMessage, socket: Socket, head: Buffer, http: (tunnel: Tunnel) => void): Promise<void> {
  socket.on("error", () => socket.destroy());
  const target = splitHostPort(req.url ?? "", 443);
  if (!target) return refuseHttp(socket, 400, `spool egress proxy: CONNECT needs host:port, not ${JSON.stringify(req.url)}\n`);
  const text = targetText(target.host, target.port);
  const verdict = await policy.decide(target.host, target.port);
  if (!verdict.ok) {
    policy.record(text, verdict);
    return refuseHttp(socket, 403, policy.refusal(text, verdict));
  }
  const upstream = connect({ host: verdict.address, port: target.port });
  upstream.once("connect", () => {
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    guardTunnel(policy, { client: socket, upstream, host: normalHost(target.host), port: target.port, text, verdict }, head, http);
  });
  upstream.once("error", (error) => {
    if (upstream.connecting) refuseHttp(socket, 502, `spool egress proxy: ${text}: ${(error as NodeJS.ErrnoException).code ?? error.message}\n`);
    else socket.destroy();
  });
  socket.once("close", () => upstream.destroy());
}

/** What the first bytes a client sends through a tunnel are. */
type FirstBytes = { kind: "more" } | { kind: "tls"; serverName: string | null } | { kind: "http" } | { kind: "other" } | { kind: "bad"; why: string };

/** At most this many bytes of a first line that starts like a request line are held until it ends (nginx's default is 8 KiB). */
export const MAX_REQUEST_LINE = 8 * 1024;

/** A method (any token, in any case: servers such as Go's take any) and the space after it. */
const METHOD_AND_SPACE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]+/;

/**
 * Reads the client's first bytes: a TLS ClientHello (a handshake record), a plain HTTP request, or anything else. What
 * a server would take for a request is one: blank lines before it are skipped (servers skip them, RFC 9112 §2.2), and
 * its method is any token, known or not, in any case, with a target that is a path, `*`, an absolute URL or a line
 * ending in an HTTP version; the proxy's parser then refuses what it does not take itself. A text protocol whose first
 * line is none of these (an SSH banner, a Redis command) is anything else.
 */
function firstBytes(bytes: Buffer): FirstBytes {
  if (bytes.length === 0) return { kind: "more" };
  if (bytes[0] === 0x16) {
    const hello = readClientHello(bytes);
    if (hello.state === "more") return { kind: "more" };
    return hello.state === "bad" ? { kind: "bad", why: `its first bytes are ${hello.why}` } : { kind: "tls", serverName: hello.serverName };
  }
  let at = 0;
  while (at < bytes.length && (bytes[at] === 0x0d || bytes[at] === 0x0a)) at += 1;
  const lineEnd = bytes.indexOf(0x0a, at);
  const line = bytes.subarray(at, lineEnd === -1 ? at + MAX_REQUEST_LINE : lineEnd).toString("latin1");
  const whole = lineEnd !== -1;
  const tooLong = () => bytes.length - at >= MAX_REQUEST_LINE;
  if (line === "") return tooLong() ? { kind: "bad", why: `more than ${MAX_REQUEST_LINE} bytes of blank lines` } : { kind: "more" };
  const method = METHOD_AND_SPACE.exec(line);
  if (method === null) {
    // A token still being sent (no space or other byte after it yet) may be a method: more is needed.
    const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(line) && !whole;
    if (!token) return { kind: "other" };
    return tooLong() ? { kind: "bad", why: `a first line of more than ${MAX_REQUEST_LINE} bytes` } : { kind: "more" };
  }
  // HTTP/2 without TLS names its host in frames the proxy does not read: refused, as a request whose Host is not checked.
  if (/^PRI[ \t]/.test(line)) return { kind: "bad", why: "HTTP/2 without TLS, whose host the proxy cannot check: use https, or HTTP/1.1" };
  const target = line.slice(method[0].length);
  if (/^[/*]/.test(target) || /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target)) return { kind: "http" };
  if (!whole) {
    // Not known yet: the rest of the line (an authority, an HTTP version after it) says.
    if (/^[A-Za-z]?[A-Za-z0-9+.-]*:?\/?$/.test(target) && !tooLong()) return { kind: "more" };
    if (tooLong()) return { kind: "bad", why: `a first line of more than ${MAX_REQUEST_LINE} bytes that starts like a request` };
    return /[ \t]HTTP\/\d/i.test(line) ? { kind: "http" } : { kind: "more" };
  }
  return /[ \t]HTTP\/\d/i.test(line) ? { kind: "http" } : { kind: "other" };
}

/** TLS alert unrecognized_name (fatal): what a client reads when the proxy refuses its ClientHello. */
const UNRECOGNIZED_NAME = Buffer.from([21, 3, 3, 0, 2, 2, 112]);

/**
 * A tunnel the list allowed: the host's bytes go to the client at once (a host may speak first), the client's are held
 * until its first bytes are read (firstBytes), then go on, are handed to `http` (plain HTTP, every request checked), or
 * end the tunnel, refused and told.
 */
function guardTunnel(policy: EgressPolicy, tunnel: Tunnel, head: Buffer, http: (tunnel: Tunnel) => void): void {
  const { client, upstream, text, verdict } = tunnel;
  upstream.pipe(client);
  let held = head;
  const refuse = (named: string, why: string, tls: boolean) => {
    policy.record(named, { ok: false, why, rule: null });
    upstream.unpipe(client);
    upstream.destroy();
    if (tls) client.end(UNRECOGNIZED_NAME);
    else client.destroy();
  };
  const settle = (): boolean => {
    const first = firstBytes(held);
    if (first.kind === "more") return false;
    client.off("data", onData);
    if (first.kind === "bad") {
      refuse(text, first.why, false);
      return true;
    }
    if (first.kind === "tls") {
      const problem = serverNameProblem(tunnel, first.serverName);
      if (problem !== null) {
        refuse(problem.named, problem.why, true);
        return true;
      }
    }
    if (first.kind === "http") {
      upstream.unpipe(client);
      upstream.destroy();
      client.pause();
      client.unshift(held);
      http(tunnel);
      return true;
    }
    policy.record(text, verdict);
    upstream.write(held);
    client.pipe(upstream);
    return true;
  };
  const onData = (chunk: Buffer) => {
    held = Buffer.concat([held, chunk]);
    settle();
  };
  if (!settle()) client.on("data", onData);
}

/**
 * Why a ClientHello's server name may not go through a tunnel to `tunnel`'s host, or null. A tunnel opened for a name
 * must name it (no name at all is refused: every TLS client that connects by a name sends it, RFC 6066); one opened for
 * an address the list names may name any server (it is the address that was allowed).
 */
function serverNameProblem(tunnel: Tunnel, serverName: string | null): { named: string; why: string } | null {
  if (tunnel.verdict.rule.address || isIP(tunnel.host) !== 0) return null;
  if (serverName === null) return { named: tunnel.text, why: "its TLS ClientHello names no server (SNI), and a tunnel opened for a name must name it" };
  const problem = hostProblem(serverName);
  const named = targetText(problem === null ? normalHost(serverName) : serverName, tunnel.port);
  if (problem !== null) return { named, why: `the TLS ClientHello of a tunnel to ${tunnel.text} names no host name (${problem})` };
  if (normalHost(serverName) === tunnel.host) return null;
  return { named, why: `named by the TLS ClientHello of a tunnel opened to ${tunnel.text}: a tunnel reaches only the host it was opened for` };
}

/** Hands a tunnel's client, its first bytes put back, to the server of plain HTTP requests in tunnels. */
function hand(server: ReturnType<typeof createHttpServer>, tunnels: WeakMap<Socket, Tunnel>, tunnel: Tunnel): void {
  tunnels.set(tunnel.client, tunnel);
  server.emit("connection", tunnel.client);
  tunnel.client.resume();
}

/** Plain HTTP requests in tunnels (CONNECT or SOCKS5 to an allowed host): each one's Host checked, then sent to the tunnel's host. */
function tunnelHttp(policy: EgressPolicy, tunnels: WeakMap<Socket, Tunnel>): ReturnType<typeof createHttpServer> {
  const server = createHttpServer({ requestTimeout: 0, headersTimeout: 60_000 });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const tunnel = tunnels.get(req.socket);
    if (!tunnel) return void res.destroy();
    // An absolute URL in a tunnel must name the tunnel's own host.
    const url = req.url ?? "";
    let path = url;
    if (!url.startsWith("/") && url !== "*") {
      const absolute = absoluteTarget(url);
      if (typeof absolute === "string" || normalHost(absolute.host) !== tunnel.host || absolute.port !== tunnel.port) {
        const named = typeof absolute === "string" ? shownHost(url) : targetText(absolute.host, absolute.port);
        return refuseRequest(policy, res, named, `named by a request in a tunnel opened to ${tunnel.text}: a tunnel reaches only the host it was opened for`);
      }
      path = absolute.path;
    }
    const host = hostHeaderProblem(req, tunnel.host, tunnel.port);
    if (host !== null) return refuseRequest(policy, res, host.named, `${host.why} in a tunnel opened to ${tunnel.text}`);
    policy.record(tunnel.text, tunnel.verdict);
    relay(req, res, tunnel.verdict.address, tunnel.port, path, tunnel.text);
  });
  server.on("connect", (_req: IncomingMessage, socket: Socket) => refuseHttp(socket, 400, "spool egress proxy: CONNECT inside a tunnel is not passed on\n"));
  server.on("upgrade", (_req: IncomingMessage, socket: Socket) =>
    refuseHttp(socket, 400, "spool egress proxy: a protocol upgrade over plain HTTP is not passed on; use https\n"),
  );
  server.on("clientError", unreadable);
  return server;
}

/** An absolute `http://host[:port]/path` request target: its host as written, port and path; a string says why not. */
function absoluteTarget(url: string): { host: string; port: number; path: string } | string {
  const match = /^http:\/\/([^/?#]*)([^#]*)$/i.exec(url);
  if (!match) return "plain requests need an absolute http:// URL; use CONNECT (HTTPS_PROXY) for https";
  // User info (`user@`) and a backslash are where URL parsers disagree on which host is meant: neither goes through.
  if (/[@\\]/.test(match[1]!)) return "a URL's host part may not hold user info (@) or a backslash";
  const target = splitHostPort(match[1]!, 80);
  if (!target) return "the URL names no host[:port]";
  const path = match[2] === "" ? "/" : match[2]!;
  if (!path.startsWith("/") && !path.startsWith("?")) return "the URL's path is not one";
  return { ...target, path: path.startsWith("?") ? `/${path}` : path };
}

/**
 * Why a plain HTTP request's Host header does not name `host` (as the rules compare it) on `port`, or null. Absent, the
 * proxy sends the target's; present, it must name that host (and that port, when it gives one); two are refused.
 */
function hostHeaderProblem(req: IncomingMessage, host: string, port: number): { named: string; why: string } | null {
  const given = req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i]!.toLowerCase() === "host").length;
  if (given > 1) return { named: targetText(host, port), why: "a request with two Host headers" };
  const header = req.headers.host;
  if (header === undefined) return null;
  const named = splitHostPort(header, port);
  if (!named) return { named: shownHost(header), why: "named by a request's Host header, which is no host[:port]" };
  const problem = hostProblem(named.host);
  if (problem !== null) return { named: shownHost(header), why: `named by a request's Host header, which is not a host name (${problem})` };
  if (normalHost(named.host) === host && named.port === port) return null;
  return { named: targetText(normalHost(named.host), named.port), why: `named by the Host header of a request to ${targetText(host, port)}` };
}

/** Refuses one plain HTTP request (403), told like any refusal; the connection goes on for the next. */
function refuseRequest(policy: EgressPolicy, res: ServerResponse, named: string, why: string): void {
  const verdict = { ok: false as const, why, rule: null };
  policy.record(named, verdict);
  res.writeHead(403, { "content-type": "text/plain; charset=utf-8", [EGRESS_BLOCKED_HEADER]: EGRESS_BLOCKED_VALUE, connection: "close" });
  res.end(policy.refusal(named, verdict));
}

/** Hop-by-hop headers and the proxy's own, which never go on. */
const HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade"]);

/** Sends a checked request to `address:port` and its answer back; the Host header is the one checked, or the target's. */
function relay(req: IncomingMessage, res: ServerResponse, address: string, port: number, path: string, text: string): void {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP.has(name)) headers[name] = value;
  headers.host ??= text;
  const upstream = httpRequest({ host: address, port, method: req.method, path, headers, setHost: false }, (answer: IncomingMessage) => {
    const back: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP.has(name)) back[name] = value;
    res.writeHead(answer.statusCode ?? 502, back);
    answer.pipe(res);
  });
  upstream.on("error", (error) => {
    if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain; charset=utf-8" });
    res.end(`spool egress proxy: ${text}: ${(error as NodeJS.ErrnoException).code ?? error.message}\n`);
  });
  req.pipe(upstream);
}

/** A plain HTTP request with an absolute URL (HTTP_PROXY): its host decided, its Host header checked, then sent on. */
async function forward(policy: EgressPolicy, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const target = absoluteTarget(req.url ?? "");
  if (typeof target === "string") {
    res.writeHead(400, { "content-type": "text/plain; charset=utf-8", connection: "close" });
    return void res.end(`spool egress proxy: ${target}\n`);
  }
  const text = targetText(target.host, target.port);
  const verdict = await policy.decide(target.host, target.port);
  if (!verdict.ok) {
    policy.record(text, verdict);
    res.writeHead(403, { "content-type": "text/plain; charset=utf-8", [EGRESS_BLOCKED_HEADER]: EGRESS_BLOCKED_VALUE, connection: "close" });
    return void res.end(policy.refusal(text, verdict));
  }
  const host = hostHeaderProblem(req, normalHost(target.host), target.port);
  if (host !== null) return refuseRequest(policy, res, host.named, host.why);
  policy.record(text, verdict);
  relay(req, res, verdict.address, target.port, target.path, text);
}

/** SOCKS5 (RFC 1928), CONNECT only, no authentication; names are resolved here (socks5h). */
function socks(policy: EgressPolicy, socket: Socket, http: (tunnel: Tunnel) => void): void {
  let buffer = Buffer.alloc(0);
  let stage: "greeting" | "request" | "done" = "greeting";
  const reply = (code: number) => Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
  const onData = (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    if (buffer.length > 600) return socket.destroy();
    if (stage === "greeting") {
      if (buffer.length < 2 || buffer.length < 2 + buffer[1]!) return;
      const methods = buffer.subarray(2, 2 + buffer[1]!);
      buffer = buffer.subarray(2 + buffer[1]!);
      if (!methods.includes(0)) return void socket.end(Buffer.from([5, 0xff]));
      socket.write(Buffer.from([5, 0]));
      stage = "request";
    }
    if (stage === "request") {
      const target = socksTarget(buffer);
      if (target === "short") return;
      stage = "done";
      socket.off("data", onData);
      if (target === null) return void socket.end(reply(8));
      if (target.command !== 1) return void socket.end(reply(7));
      const rest = buffer.subarray(target.length);
      void socksConnect(policy, socket, target.host, target.port, rest, reply, http);
    }
  };
  socket.on("data", onData);
}

/** The request's target; a name as its bytes are (checked by the policy, never cut or mended here). */
function socksTarget(b: Buffer): { command: number; host: string; port: number; length: number } | "short" | null {
  if (b.length < 5) return "short";
  if (b[0] !== 5) return null;
  const type = b[3];
  let host: string;
  let at: number;
  if (type === 1) {
    if (b.length < 10) return "short";
    host = [...b.subarray(4, 8)].join(".");
    at = 8;
  } else if (type === 3) {
    const n = b[4]!;
    if (b.length < 5 + n + 2) return "short";
    host = b.subarray(5, 5 + n).toString("latin1");
    at = 5 + n;
  } else if (type === 4) {
    if (b.length < 22) return "short";
    const words: string[] = [];
    for (let i = 4; i < 20; i += 2) words.push(b.readUInt16BE(i).toString(16));
    host = words.join(":");
    at = 20;
  } else return null;
  return { command: b[1]!, host, port: b.readUInt16BE(at), length: at + 2 };
}

async function socksConnect(
  policy: EgressPolicy,
  socket: Socket,
  host: string,
  port: number,
  rest: Buffer,
  reply: (code: number) => Buffer,
  http: (tunnel: Tunnel) => void,
): Promise<void> {
  const text = targetText(host, port);
  const verdict = await policy.decide(host, port);
  // 2: "connection not allowed by ruleset".
  if (!verdict.ok) {
    policy.record(text, verdict);
    return void socket.end(reply(2));
  }
  const upstream = connect({ host: verdict.address, port });
  upstream.once("connect", () => {
    socket.write(reply(0));
    guardTunnel(policy, { client: socket, upstream, host: normalHost(host), port, text, verdict }, rest, http);
  });
  upstream.once("error", () => (upstream.connecting ? socket.end(reply(5)) : socket.destroy()));
  socket.once("close", () => upstream.destroy());
}
