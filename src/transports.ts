import { chmodSync, rmSync } from "node:fs";
import type { Server as HttpServer, IncomingMessage, ServerResponse } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { endpoint, serverProof } from "./client/server-proof.js";
import type { Logger } from "./logger.js";

export { PROOF_PATH } from "./client/server-proof.js";

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
 * `GET PROOF_PATH`: proves to a TCP client that this server holds its token's verifier (src/client/server-proof.ts),
 * bound to this end of the connection. An unknown credential gets 401 and no proof.
 */
export async function answerProof(
  request: IncomingMessage,
  response: ServerResponse,
  verifierOf: (id: string) => Buffer | null | Promise<Buffer | null>,
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
  response.writeHead(204, { "Spool-Proof": serverProof(verifier, nonce, endpoint(request.socket.localAddress, request.socket.localPort)) });
  response.end();
}

export interface PreAuthLimits {
  /** Connections not authenticated yet, all together. */
  total: number;
  /** Of them, from one address (Unix socket connections count as one address). */
  perAddress: number;
  /** How long a connection may stay unauthenticated; 0 = no deadline. */
  deadlineMs: number;
}

/**
 * The connections that have not authenticated yet (SPEC §2c "Bounded before authentication"): at most `perAddress`
 * from one address and `total` in all, each for at most `deadlineMs`. A new connection past a cap closes the oldest
 * waiting one (of its address, else of all) rather than being refused: a client that authenticates at once gets in
 * while idle connections pile up, and authenticated connections are never counted.
 */
export class PreAuthGate {
  readonly #waiting = new Map<Socket, { address: string; timer: NodeJS.Timeout | null }>();
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
    if ((this.#perAddress.get(address) ?? 0) >= this.limits.perAddress) this.#evictOldest(address);
    if (this.#waiting.size >= this.limits.total) this.#evictOldest(null);
    const timer = this.limits.deadlineMs > 0 ? setTimeout(() => socket.destroy(), this.limits.deadlineMs) : null;
    timer?.unref();
    this.#waiting.set(socket, { address, timer });
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    socket.once("close", () => this.authenticated(socket));
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

  #evictOldest(address: string | null): void {
    for (const [socket, entry] of this.#waiting) {
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
        `closing connections that have not authenticated (limits.maxUnauthenticatedConnections ${this.limits.total}, per address ${this.limits.perAddress}): ${this.#evicted} so far`,
      );
    }
  }
}
