import { lookup } from "node:dns/promises";
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { BlockList, connect, createServer, isIP, type Server, type Socket } from "node:net";
import { EGRESS_BLOCKED_HEADER, EGRESS_BLOCKED_VALUE, type EgressRule, egressRules, matchingEgressRule, normalHost } from "../protocol/egress.js";

/**
 * The egress proxy of a sandboxed command in network mode `allowlist` (SPEC §7 Runners, "Sandbox modes"): its own
 * process outside the sandbox, listening on one Unix socket that is bound into the sandbox. It speaks HTTP (CONNECT
 * and plain requests with an absolute URL) and SOCKS5 (CONNECT), told apart by the first byte. Deny by default: it
 * connects only to a host on the list, resolving the name itself (the command's own resolver reaches nothing), and
 * never to a private, loopback or link-local address unless the list names that address. TLS passes through untouched.
 */

export interface EgressProxyOptions {
  /** The list's entries (`registry.npmjs.org`, `*.github.com`, `example.org:8443`, `10.0.0.5`). */
  allow: readonly string[];
  /** Names the proxy resolves to these addresses before asking DNS (the operator's hosts file for it); trusted as given. */
  hosts?: Readonly<Record<string, string>>;
  /** Where each allowed and refused host is told once (the command's stderr). */
  report?: (line: string) => void;
}

/** A decision on one target. */
export type EgressVerdict = { ok: true; address: string; rule: EgressRule } | { ok: false; why: string; rule: EgressRule | null };

/** Addresses a name on the list may not resolve to unless the list names the address itself (loopback, private, link-local, ...). */
const INTERNAL = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 3],
] as const)
  INTERNAL.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 127],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const)
  INTERNAL.addSubnet(net, bits, "ipv6");

/** Whether `address` is loopback, private, link-local, multicast or otherwise not on the internet (IPv4-mapped IPv6 judged by its IPv4). */
export function isInternalAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return INTERNAL.check(mapped[1]!, "ipv4");
  const family = isIP(address);
  if (family === 0) return true;
  return INTERNAL.check(address, family === 4 ? "ipv4" : "ipv6");
}

/** At most this many report lines a command; then one line saying more were left out. */
export const MAX_REPORT_LINES = 64;

export class EgressPolicy {
  readonly rules: EgressRule[];
  readonly #hosts: Map<string, string>;
  readonly #report: (line: string) => void;
  readonly #told = new Set<string>();
  #cut = false;
  /** What was allowed and refused, for the record at the end: `host:port`, each once. */
  readonly allowed = new Set<string>();
  readonly blocked = new Set<string>();

  constructor(options: EgressProxyOptions) {
    this.rules = egressRules(options.allow);
    this.#hosts = new Map(Object.entries(options.hosts ?? {}).map(([name, address]) => [normalHost(name), address]));
    this.#report = options.report ?? (() => {});
  }

  /** Whether `host:port` may be reached, and at which address. */
  async decide(host: string, port: number): Promise<EgressVerdict> {
    const target = normalHost(host);
    const rule = matchingEgressRule(this.rules, target, port);
    if (!rule) return { ok: false, why: "not on the list", rule: null };
    if (isIP(target) !== 0) return { ok: true, address: target, rule };
    const mapped = this.#hosts.get(target);
    if (mapped) return { ok: true, address: mapped, rule };
    let addresses: { address: string }[];
    try {
      addresses = await lookup(target, { all: true, verbatim: true });
    } catch (error) {
      return { ok: false, why: `its name does not resolve (${(error as NodeJS.ErrnoException).code ?? "error"})`, rule };
    }
    // An allowed name that points inside (DNS rebinding, a stale record) reaches only an address the list names itself.
    const outside = addresses.find((a) => !isInternalAddress(a.address) || matchingEgressRule(this.rules, a.address, port)?.address);
    if (!outside) return { ok: false, why: `it resolves to ${addresses[0]?.address ?? "nothing"}, an internal address the list does not name`, rule };
    return { ok: true, address: outside.address, rule };
  }

  /** Tells one outcome, once per host and outcome, bounded. */
  record(target: string, verdict: EgressVerdict): void {
    const line = verdict.ok ? `allowed: ${target}` : `blocked: ${target} (${verdict.why})`;
    const set = verdict.ok ? this.allowed : this.blocked;
    if (set.size < MAX_REPORT_LINES) set.add(target);
    if (this.#told.has(line)) return;
    if (this.#told.size >= MAX_REPORT_LINES) {
      if (!this.#cut) this.#report(`spool egress: more hosts than ${MAX_REPORT_LINES}; the rest are not told`);
      this.#cut = true;
      return;
    }
    this.#told.add(line);
    this.#report(`spool egress: ${line}`);
  }

  /** The body of a refusal: the host and the rule (or the list) that decided. */
  refusal(target: string, verdict: Extract<EgressVerdict, { ok: false }>): string {
    const list = this.rules.map((r) => r.text).join(", ") || "empty";
    const rule = verdict.rule ? `the rule "${verdict.rule.text}" names it, but ` : "";
    return `spool egress proxy: ${target} is blocked by the allowlist: ${rule}${verdict.why} (the list: ${list})\n`;
  }
}

/** Starts the proxy on `socketPath`; resolves once it listens. */
export function startEgressProxy(socketPath: string, policy: EgressPolicy): Promise<Server> {
  const http = createHttpServer({ requestTimeout: 0, headersTimeout: 60_000 });
  http.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => void tunnel(policy, req, socket, head));
  http.on("request", (req: IncomingMessage, res: ServerResponse) => void forward(policy, req, res));
  http.on("clientError", (_error, socket: Socket) => socket.destroy());
  const server = createServer((socket) => {
    socket.on("error", () => socket.destroy());
    socket.once("readable", () => {
      const first: Buffer | null = socket.read(1);
      if (first === null) return socket.destroy();
      socket.unshift(first);
      if (first[0] === 5) socks(policy, socket);
      else http.emit("connection", socket);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve(server));
  });
}

/** `host:port` as a person reads it (IPv6 in brackets). */
const targetText = (host: string, port: number) => `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;

function splitHostPort(authority: string, defaultPort: number): { host: string; port: number } | null {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(authority);
  if (!match) return null;
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  return port >= 1 && port <= 65535 ? { host: normalHost(match[1]!), port } : null;
}

function refuseHttp(socket: Socket, status: number, body: string): void {
  const head = [`HTTP/1.1 ${status} ${status === 403 ? "Forbidden" : "Bad Request"}`, "content-type: text/plain; charset=utf-8"];
  if (status === 403) head.push(`${EGRESS_BLOCKED_HEADER}: ${EGRESS_BLOCKED_VALUE}`);
  head.push(`content-length: ${Buffer.byteLength(body)}`, "connection: close");
  socket.end(`${head.join("\r\n")}\r\n\r\n${body}`);
}

async function tunnel(policy: EgressPolicy, req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
  socket.on("error", () => socket.destroy());
  const target = splitHostPort(req.url ?? "", 443);
  if (!target) return refuseHttp(socket, 400, `spool egress proxy: CONNECT needs host:port, not ${JSON.stringify(req.url)}\n`);
  const text = targetText(target.host, target.port);
  const verdict = await policy.decide(target.host, target.port);
  policy.record(text, verdict);
  if (!verdict.ok) return refuseHttp(socket, 403, policy.refusal(text, verdict));
  const upstream = connect({ host: verdict.address, port: target.port });
  upstream.once("connect", () => {
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.once("error", (error) => {
    if (upstream.connecting) refuseHttp(socket, 502, `spool egress proxy: ${text}: ${(error as NodeJS.ErrnoException).code ?? error.message}\n`);
    else socket.destroy();
  });
  socket.once("close", () => upstream.destroy());
}

/** Hop-by-hop headers and the proxy's own, which never go on. */
const HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade"]);

async function forward(policy: EgressPolicy, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let url: URL;
  try {
    url = new URL(req.url ?? "");
  } catch {
    url = new URL("invalid:");
  }
  if (url.protocol !== "http:") {
    res.writeHead(400, { "content-type": "text/plain; charset=utf-8", connection: "close" });
    return void res.end("spool egress proxy: plain requests need an absolute http:// URL; use CONNECT (HTTPS_PROXY) for https\n");
  }
  const host = normalHost(url.hostname);
  const port = Number(url.port || 80);
  const text = targetText(host, port);
  const verdict = await policy.decide(host, port);
  policy.record(text, verdict);
  if (!verdict.ok) {
    res.writeHead(403, { "content-type": "text/plain; charset=utf-8", [EGRESS_BLOCKED_HEADER]: EGRESS_BLOCKED_VALUE, connection: "close" });
    return void res.end(policy.refusal(text, verdict));
  }
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP.has(name)) headers[name] = value;
  const upstream = httpRequest(
    { host: verdict.address, port, method: req.method, path: `${url.pathname}${url.search}`, headers, setHost: false },
    (answer: IncomingMessage) => {
      const back: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP.has(name)) back[name] = value;
      res.writeHead(answer.statusCode ?? 502, back);
      answer.pipe(res);
    },
  );
  upstream.on("error", (error) => {
    if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain; charset=utf-8" });
    res.end(`spool egress proxy: ${text}: ${(error as NodeJS.ErrnoException).code ?? error.message}\n`);
  });
  req.pipe(upstream);
}

/** SOCKS5 (RFC 1928), CONNECT only, no authentication; names are resolved here (socks5h). */
function socks(policy: EgressPolicy, socket: Socket): void {
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
      void socksConnect(policy, socket, target.host, target.port, rest, reply);
    }
  };
  socket.on("data", onData);
}

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
  return { command: b[1]!, host: normalHost(host), port: b.readUInt16BE(at), length: at + 2 };
}

async function socksConnect(policy: EgressPolicy, socket: Socket, host: string, port: number, rest: Buffer, reply: (code: number) => Buffer): Promise<void> {
  const text = targetText(host, port);
  const verdict = await policy.decide(host, port);
  policy.record(text, verdict);
  // 2: "connection not allowed by ruleset".
  if (!verdict.ok) return void socket.end(reply(2));
  const upstream = connect({ host: verdict.address, port });
  upstream.once("connect", () => {
    socket.write(reply(0));
    if (rest.length > 0) upstream.write(rest);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.once("error", () => (upstream.connecting ? socket.end(reply(5)) : socket.destroy()));
  socket.once("close", () => upstream.destroy());
}
