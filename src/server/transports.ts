import { randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, readFileSync, rmSync } from "node:fs";
import type { Server as HttpServer, IncomingMessage, ServerResponse } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { WebSocket, WebSocketServer } from "ws";
import { clientProof, endpoint, PROOF_SCHEME, serverProof } from "../client/server-proof.js";
import type { Logger } from "../logger.js";
import { isBinaryFrame } from "../protocol/binary-frame.js";
import type { TransportKind } from "../protocol/roles.js";
import type { Transport } from "../rpc/transport.js";
import type { Scavenger } from "./scavenger.js";

export { PROOF_PATH } from "../client/server-proof.js";

/** Longest path a Unix socket address holds on Linux (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Listens on the home's Unix socket as well (SPEC §2c): the connections it accepts are served by `http`
 * like TCP ones. The home is the server's (its lock is held), so a socket file left there is a dead server's and goes.
 * The socket is made 0600 (in a 0700 home): only the home's owner reaches it. Null, with a warning, when the path is
 * too long for a socket address (clients then use TCP, where the server proves itself before they send the token).
 */
export async function listenUnix(http: HttpServer, path: string, log: Logger): Promise<NetServer | null> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    log.warn(`no Unix socket: ${path} is longer than ${MAX_SOCKET_PATH_BYTES} bytes; local clients use TCP (a shorter --home gives them the socket)`);
    return null;
  }
  rmSync(path, { force: true });
  const server = createNetServer((socket) => http.emit("connection", socket));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // The socket is created with no permission for group and others (the bind happens inside listen()).
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => resolve());
    } finally {
      process.umask(umask);
    }
  });
  chmodSync(path, 0o600);
  return server;
}

/** Stops listening on the Unix socket and removes it. */
export function closeUnix(server: NetServer | null, path: string): void {
  if (!server) return;
  server.close();
  rmSync(path, { force: true });
}

/**
 * `GET PROOF_PATH`: proves to a client that this server holds its token's verifier (src/client/server-proof.ts),
 * bound to this end of the connection (`unix`: the address of the Unix socket it came in by, else TCP's `ip:port`).
 * An unknown credential gets 401 and no proof. With `proofs`, the answer carries a challenge the client answers with
 * its own proof instead of the token (the Unix socket's clients do).
 */
export async function answerProof(
  request: IncomingMessage,
  response: ServerResponse,
  verifierOf: (id: string) => Buffer | null | Promise<Buffer | null>,
  options: { proofs?: ClientProofs; unix?: string | null } = {},
): Promise<void> {
  const id = String(request.headers["spool-credential"] ?? "");
  const nonce = String(request.headers["spool-nonce"] ?? "");
  // 32 hex digits: the home's token; 16: a principal's id.
  const verifier = /^(?:[0-9a-f]{32}|[0-9a-f]{16})$/.test(id) ? await verifierOf(id) : null;
  if (request.method !== "GET" || !/^[0-9a-f]{64}$/.test(nonce) || verifier === null) {
    response.writeHead(verifier === null ? 401 : 400, { "Content-Length": "0" });
    response.end();
    return;
  }
  // A Unix socket connection has no TCP address (remoteAddress is undefined).
  const address = request.socket.remoteAddress === undefined && options.unix ? options.unix : endpoint(request.socket.localAddress, request.socket.localPort);
  const headers: Record<string, string> = { "Spool-Proof": serverProof(verifier, nonce, address) };
  if (options.proofs) headers["Spool-Challenge"] = options.proofs.challenge(request.socket as Socket, { id, nonce, address });
  response.writeHead(204, headers);
  response.end();
}

/**
 * The challenges given on connections (SPEC §2c): one a connection, good for one `Authorization: Spool-Proof …`
 * on it, spent at the first try whether right or wrong. What a client sent is worth nothing on another connection
 * (another challenge) nor again on its own.
 */
export class ClientProofs {
  readonly #given = new WeakMap<Socket, { id: string; nonce: string; address: string; challenge: string }>();

  challenge(socket: Socket, asked: { id: string; nonce: string; address: string }): string {
    const challenge = randomBytes(32).toString("hex");
    this.#given.set(socket, { ...asked, challenge });
    return challenge;
  }

  /**
   * The credential a request's `Authorization: Spool-Proof <hmac>` proves it holds, as its id and a check of a
   * verifier; null when it carries no such header, its connection was given no challenge or spent it.
   */
  take(request: IncomingMessage): { id: string; proves: (verifier: Buffer) => boolean } | null {
    const header = request.headers.authorization ?? "";
    if (!header.startsWith(`${PROOF_SCHEME} `)) return null;
    const socket = request.socket as Socket;
    const given = this.#given.get(socket);
    this.#given.delete(socket);
    if (!given) return null;
    const presented = Buffer.from(header.slice(PROOF_SCHEME.length + 1).trim(), "hex");
    return {
      id: given.id,
      proves: (verifier) => {
        const expected = Buffer.from(clientProof(verifier, given.challenge, given.nonce, given.address), "hex");
        return presented.length === expected.length && timingSafeEqual(presented, expected);
      },
    };
  }
}

export interface PreAuthLimits {
  /** Connections not authenticated yet, all together, once past `graceMs`. */
  total: number;
  /** Of them, from one address (Unix socket connections count as one address). */
  perAddress: number;
  /** How long a connection may stay unauthenticated; 0 = no deadline. */
  deadlineMs: number;
  /** How long a new connection has for its handshake before it counts against the caps as waiting idle. */
  graceMs: number;
}

/** Connections still in their grace are bounded too: at most this many times the caps, past which the oldest goes. */
export const PRE_AUTH_HARD_FACTOR = 4;

/**
 * The connections that have not authenticated yet (SPEC §2c "Bounded before authentication"). A connection has
 * `graceMs` for its handshake (the TCP proof, then the WebSocket upgrade) before it counts: past that it is taken
 * for idle, and at most `perAddress` idle ones from one address and `total` in all are kept. A new connection past
 * a cap closes the oldest idle one (of its address, else of all) rather than being refused, so a client that
 * authenticates at once gets in while idle connections pile up, and a burst of clients from one address (a CI
 * fleet behind one NAT, a page's tabs, the load bench) all get in, their handshakes never cut. Connections still in
 * their grace are bounded at PRE_AUTH_HARD_FACTOR times the caps (past that the oldest goes, whatever its age),
 * and every connection is closed at `deadlineMs`. Authenticated connections are never counted.
 */
export class PreAuthGate {
  readonly #waiting = new Map<Socket, { address: string; since: number; timer: NodeJS.Timeout | null; answering: ServerResponse | null }>();
  readonly #perAddress = new Map<string, number>();
  #evicted = 0;
  #warnedAt = 0;

  constructor(
    private readonly limits: PreAuthLimits,
    private readonly log: Logger,
  ) {}

  get waiting(): number {
    return this.#waiting.size;
  }

  admit(socket: Socket): void {
    const address = socket.remoteAddress ?? "unix";
    const now = performance.now();
    const idleSince = now - this.limits.graceMs;
    if (this.#idle(address, idleSince).ofAddress >= this.limits.perAddress) this.#evictOldest(address, idleSince);
    else if ((this.#perAddress.get(address) ?? 0) >= this.limits.perAddress * PRE_AUTH_HARD_FACTOR) this.#evictOldest(address, Number.POSITIVE_INFINITY);
    if (this.#idle(address, idleSince).all >= this.limits.total) this.#evictOldest(null, idleSince);
    else if (this.#waiting.size >= this.limits.total * PRE_AUTH_HARD_FACTOR) this.#evictOldest(null, Number.POSITIVE_INFINITY);
    const timer = this.limits.deadlineMs > 0 ? setTimeout(() => this.#deadline(socket), this.limits.deadlineMs) : null;
    timer?.unref();
    this.#waiting.set(socket, { address, since: now, timer, answering: null });
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    socket.once("close", () => this.authenticated(socket));
  }

  /**
   * A request on a connection is being answered (the page's assets, a sign-in): when the deadline comes while it is,
   * and its body was read whole, the connection ends once the answer is out rather than in its middle (a code spent
   * by a sign-in whose answer was cut signs no one in).
   */
  answering(request: IncomingMessage, response: ServerResponse): void {
    const entry = this.#waiting.get(request.socket as Socket);
    if (!entry) return;
    entry.answering = response;
    response.once("close", () => {
      if (entry.answering === response) entry.answering = null;
    });
  }

  /** The deadline: the connection is closed, after the answer under way if its request was read whole. */
  #deadline(socket: Socket): void {
    const answering = this.#waiting.get(socket)?.answering;
    if (answering?.req.complete && !answering.writableFinished) answering.once("close", () => socket.destroy());
    else socket.destroy();
  }

  /** The connections admitted at `idleSince` or before (past their grace): from `address`, and in all. */
  #idle(address: string, idleSince: number): { ofAddress: number; all: number } {
    let ofAddress = 0;
    let all = 0;
    // Oldest first: the first one still in its grace ends the count.
    for (const entry of this.#waiting.values()) {
      if (entry.since > idleSince) break;
      all++;
      if (entry.address === address) ofAddress++;
    }
    return { ofAddress, all };
  }

  /** The connection is authenticated (or gone): it no longer counts. */
  authenticated(socket: Socket): void {
    const entry = this.#waiting.get(socket);
    if (!entry) return;
    this.#waiting.delete(socket);
    if (entry.timer) clearTimeout(entry.timer);
    const left = (this.#perAddress.get(entry.address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(entry.address, left);
    else this.#perAddress.delete(entry.address);
  }

  /** Closes the oldest waiting connection (of `address` when given) admitted before `before`. */
  #evictOldest(address: string | null, before: number): void {
    for (const [socket, entry] of this.#waiting) {
      if (entry.since > before) break;
      if (address !== null && entry.address !== address) continue;
      this.authenticated(socket);
      socket.destroy();
      this.#evicted++;
      break;
    }
    // One warning a minute at most: a flood would otherwise flood the log too.
    const now = Date.now();
    if (now - this.#warnedAt > 60_000) {
      this.#warnedAt = now;
      this.log.warn(
        `closing connections that have not authenticated (limits.maxUnauthenticatedConnections ${this.limits.total}, per address ${this.limits.perAddress}, each after limits.authGraceMs ${this.limits.graceMs}; ${PRE_AUTH_HARD_FACTOR} times as many in their grace): ${this.#evicted} so far`,
      );
    }
  }
}

/** The process's descriptor limit (RLIMIT_NOFILE's soft value, which Node raises to the hard one), or null where /proc does not say. */
export function descriptorLimit(): number | null {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    return soft && /^\d+$/.test(soft) ? Number(soft) : null;
  } catch {
    return null;
  }
}

/**
 * Sockets the server holds at once (limits.maxSockets): as configured, else the descriptor limit less a quarter of it
 * (at least 256) for the store, the commands' pipes and the server's own connections; without a known limit, none.
 */
export function socketBound(configured: number, limit = descriptorLimit()): number {
  if (configured > 0) return configured;
  if (limit === null) return Number.POSITIVE_INFINITY;
  return Math.max(1, limit - Math.max(256, Math.floor(limit / 4)));
}

/**
 * The sockets the server holds (TCP and the Unix socket), bounded below the process's descriptor limit: a TCP
 * connection past `max - reserve` is closed at once, the home's Unix socket goes on to `max`, so however many
 * descriptors others hold, the home still connects (accept never fails for want of a descriptor, which would refuse
 * the home's socket like any other).
 */
export class SocketBudget {
  #open = 0;
  #refused = 0;
  #warnedAt = 0;

  constructor(
    private readonly max: number,
    private readonly reserve: number,
    private readonly log: Logger,
  ) {}

  get open(): number {
    return this.#open;
  }

  /** Counts the socket until it closes; false (and the socket closed) when it is past its bound. */
  admit(socket: Socket): boolean {
    const unix = socket.remoteAddress === undefined && !socket.destroyed;
    if (this.#open >= this.max - (unix ? 0 : this.reserve)) {
      socket.destroy();
      this.#refused++;
      const now = Date.now();
      if (now - this.#warnedAt > 60_000) {
        this.#warnedAt = now;
        this.log.warn(
          `refusing connections: ${this.#open} sockets open (limits.maxSockets ${this.max}, the last limits.homeReserve ${this.reserve} kept for the home's Unix socket): ${this.#refused} so far`,
        );
      }
      return false;
    }
    this.#open++;
    socket.once("close", () => this.#open--);
    return true;
  }
}

/**
 * A server connection's WebSocket as the RPC layer's Transport. What is sent in one turn of the event loop (the
 * acknowledgements one group commit settles) leaves in one write: the socket is corked until the next tick. A close or
 * a terminate uncorks first: a destroyed socket drops what it holds corked, so a `terminate()` in the tick of a send
 * lost the last messages and the close frame queued behind them (the peer saw 1006, not why it was closed).
 */
export function wsTransport(socket: WebSocket, raw: Socket, scavenger: Scavenger): Transport {
  let corked = false;
  const uncork = () => {
    if (!corked) return;
    corked = false;
    raw.uncork();
  };
  const cork = () => {
    if (!corked && !raw.destroyed) {
      corked = true;
      raw.cork();
      process.nextTick(uncork);
    }
  };
  return {
    // ws calls back once the frame is written to the socket (or with an error when the socket is gone).
    send: (text, flushed) => {
      cork();
      socket.send(text, flushed);
    },
    // A reply built as bytes: ws frames the Buffer as it is (a header written before it, no copy).
    sendUtf8: (data, flushed) => {
      cork();
      socket.send(data, { binary: false }, flushed);
    },
    close: (code, reason) => {
      socket.close(code, reason);
      uncork();
    },
    terminate: () => {
      uncork();
      socket.terminate();
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    onMessage: (listener) =>
      socket.on("message", (data, isBinary) => {
        if (!isBinary) listener(data.toString());
        // JSON text sent in a binary message is taken as text; a binary frame goes to onBinary.
        else if (!isBinaryFrame(data as Buffer)) listener((data as Buffer).toString("utf8"));
      }),
    onBinary: (listener) =>
      socket.on("message", (data, isBinary) => {
        if (isBinary && isBinaryFrame(data as Buffer)) {
          scavenger.received((data as Buffer).length);
          listener(data as Buffer);
        }
      }),
    onClose: (listener) => socket.on("close", (code, reason) => listener(code, reason.toString())),
    bufferedAmount: () => socket.bufferedAmount,
  };
}

/** How long a stopping server waits for its clients to answer the close (a client that reads nothing never does). */
export const CLOSE_HANDSHAKE_MS = 1_000;

/**
 * Resolves once every WebSocket of `wss` has closed (its peer answered the close frame, or its socket went), or after
 * `ms`. One still open and not yet told gets the close now (1001, the server is going away).
 */
export function closingHandshakes(wss: WebSocketServer, ms = CLOSE_HANDSHAKE_MS): Promise<void> {
  const open = [...wss.clients].filter((ws) => ws.readyState !== ws.CLOSED);
  if (!open.length) return Promise.resolve();
  return new Promise((resolve) => {
    let left = open.length;
    const timer = setTimeout(resolve, ms);
    const closed = () => {
      if (--left > 0) return;
      clearTimeout(timer);
      resolve();
    };
    for (const ws of open) {
      ws.once("close", closed);
      if (ws.readyState === ws.OPEN) ws.close(1001, "server shutting down");
    }
  });
}

/** What this process's own /mcp and /acp endpoints send with the connections they open (Spool-Door): only it knows it. */
const DOOR_KEY = randomBytes(24).toString("hex");

/** The Spool-Door value of this process's /mcp or /acp endpoint. */
export const ownDoor = (kind: "mcp" | "acp"): string => `${kind}.${DOOR_KEY}`;

const doorMatches = (given: string, kind: "mcp" | "acp"): boolean => {
  const want = Buffer.from(ownDoor(kind));
  const have = Buffer.from(given);
  return have.length === want.length && timingSafeEqual(have, want);
};

/**
 * How an authenticated upgrade reached the server, as the server itself knows it (never a client's word): a page's
 * session, a connection of this server's own /mcp or /acp endpoint (its Spool-Door), else the home's Unix socket (no
 * remote address) or TCP.
 */
export function verifiedTransport(request: IncomingMessage, pageSession: boolean): TransportKind {
  if (pageSession) return "page";
  const door = request.headers["spool-door"];
  if (typeof door === "string") {
    if (doorMatches(door, "mcp")) return "mcp";
    if (doorMatches(door, "acp")) return "acp";
  }
  return request.socket.remoteAddress === undefined ? "unix" : "tcp";
}
