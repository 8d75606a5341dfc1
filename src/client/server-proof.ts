import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { realpathSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { PRINCIPAL_TOKEN } from "../protocol/roles.js";

/**
 * The server's proof over TCP (SPEC §2c). Before a client sends its bearer token over a TCP connection,
 * the server shows, on that same connection, that it holds the token's verifier:
 *
 *   client → `GET PROOF_PATH` with `Spool-Credential: <id>` and `Spool-Nonce: <32 random bytes>`
 *   server → `204` with `Spool-Proof: HMAC-SHA256(verifier, "spool-server-proof\n" nonce "\n" address)`
 *
 * where `verifier` is the token's SHA-256 (what a server stores), `id` another hash of the token that names it without
 * revealing it, and `address` the server's end of the TCP connection (`ip:port`, as the server sees its local end and
 * the client its remote end). A listener that took the port has no verifier; one that relays to the real server on
 * another port gets a proof for that port, which the client refuses. Only then does the client send the upgrade with
 * `Authorization: Bearer`, on the same connection (nothing can take the port between the proof and the token).
 *
 * Over the home's Unix socket the client sends no token at all (SPEC §2c): the server's `204` carries a
 * `Spool-Challenge` too (32 random bytes, hex, good once on that connection), and the client answers it in the
 * upgrade (or the one HTTP request it makes) with `Authorization: Spool-Proof HMAC-SHA256(verifier,
 * "spool-client-proof\n" challenge "\n" nonce "\n" address)`, `address` being `unix:` and the socket's real path
 * on both sides. What a client sends there proves it holds the credential it names and is worth nothing again: a
 * replay meets a new challenge, and a relay on another path gets a proof for that path, which the server refuses.
 */
export const PROOF_PATH = "/.well-known/spool-proof";

const sha256 = (text: string) => createHash("sha256").update(text).digest();

/**
 * What a server keeps to prove it knows a token: the SHA-256 of a principal's secret (`spool_<id>_<secret>`, the
 * hash its store holds), else of the whole token (the home's token file).
 */
export function tokenVerifier(token: string): Buffer {
  const principal = PRINCIPAL_TOKEN.exec(token);
  return sha256(principal ? principal[2]! : token);
}

/**
 * A name for a token that reveals nothing of its secret or of its verifier: a principal's id (16 hex digits), else
 * another hash of the token (32 hex digits).
 */
export function credentialId(token: string): string {
  const principal = PRINCIPAL_TOKEN.exec(token);
  return principal ? principal[1]! : sha256(`spool-credential-id\n${token}`).toString("hex").slice(0, 32);
}

/** `ip:port` of one end of a TCP connection, an IPv4-mapped IPv6 address as its IPv4 form. */
export function endpoint(address: string | undefined, port: number | undefined): string {
  const ip = (address ?? "").replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "");
  return `${ip.includes(":") ? `[${ip}]` : ip}:${port ?? 0}`;
}

export function serverProof(verifier: Buffer, nonce: string, address: string): string {
  return createHmac("sha256", verifier).update(`spool-server-proof\n${nonce}\n${address}`).digest("hex");
}

/** The client's answer to the server's challenge (the Unix socket): proves it holds the verifier, good once. */
export function clientProof(verifier: Buffer, challenge: string, nonce: string, address: string): string {
  return createHmac("sha256", verifier).update(`spool-client-proof\n${challenge}\n${nonce}\n${address}`).digest("hex");
}

/** The `Authorization` scheme of a client's proof (the Unix socket), in place of `Bearer`. */
export const PROOF_SCHEME = "Spool-Proof";

/** The address both ends bind a Unix socket's proofs to: `unix:` and the socket's real path (links resolved). */
export function unixEndpoint(path: string): string {
  try {
    return `unix:${realpathSync(path)}`;
  } catch {
    return `unix:${path}`;
  }
}

/** Why a server was not trusted with the token (nothing was sent to it but the credential's id and a nonce). */
export class ServerProofError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

const MAX_HEAD_BYTES = 8 * 1024;

/** The refusal: what happened, that nothing was sent, and what to do. */
function unproven(address: string, what: string, socket = false): ServerProofError {
  const todo = socket
    ? "Is `spool serve` running for this home? Another process may have put this socket there"
    : "Reach your home's server over its Unix socket (the default when $SPOOL_HOME/spool.sock exists: is `spool serve` running for this home?), or name the right server with --server / $SPOOL_SERVER";
  return new ServerProofError(`${address} ${what}: it did not prove it is the Spool server holding this token, and the token was not sent. ${todo}`);
}

/** Where a proven connection goes: a TCP `host:port`, or a Unix socket's path. */
export type ProofTarget = { host: string; port: number } | { path: string };

/** A connection the server proved itself on, and what the client sends as its `Authorization` there. */
export interface ProvenConnection {
  socket: Socket;
  /** `Spool-Proof …` over a Unix socket (the token itself is never sent there); null over TCP (then `Bearer`). */
  authorization: string | null;
}

/**
 * Opens a connection to `target` and has the server prove it holds `token`'s verifier (see above); resolves with
 * the connection, ready for the WebSocket upgrade, or rejects without having sent the token. Over a Unix socket it
 * also answers the server's challenge: the `authorization` to send instead of the token.
 */
export function provenConnection(target: ProofTarget, token: string, timeoutMs = 10_000): Promise<ProvenConnection> {
  const nonce = randomBytes(32).toString("hex");
  const unix = "path" in target ? unixEndpoint(target.path) : null;
  const hostHeader = "path" in target ? "localhost" : target.host.includes(":") ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
  const where = "path" in target ? target.path : hostHeader;
  return new Promise((resolve, reject) => {
    const socket = "path" in target ? connect({ path: target.path }) : connect({ host: target.host, port: target.port });
    let head = Buffer.alloc(0);
    const fail = (error: Error) => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(unproven(where, `gave no proof within ${timeoutMs} ms`, unix !== null)), timeoutMs);
    const onError = (error: Error) => fail(error);
    const onClose = () => fail(unproven(where, "closed the connection", unix !== null));
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
    };
    const onData = (data: Buffer) => {
      head = Buffer.concat([head, data]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) fail(unproven(where, "answered with something else", unix !== null));
        return;
      }
      const lines = head.subarray(0, end).toString("latin1").split("\r\n");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0);
      const headers = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      if (status === 401)
        return fail(
          new ServerProofError(`${where} does not know this token (HTTP 401: revoked, expired, or never made by this server); the token was not sent`, 401),
        );
      const verifier = tokenVerifier(token);
      const address = unix ?? endpoint(socket.remoteAddress, socket.remotePort);
      const given = Buffer.from(headers.get("spool-proof") ?? "", "hex");
      const expected = Buffer.from(serverProof(verifier, nonce, address), "hex");
      if (status !== 204 || given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return fail(unproven(where, `answered HTTP ${status || "?"} with ${headers.has("spool-proof") ? "a wrong proof" : "no proof"}`, unix !== null));
      }
      if (end + 4 !== head.length) return fail(unproven(where, "sent more than a proof", unix !== null));
      const challenge = headers.get("spool-challenge") ?? "";
      if (unix !== null && !/^[0-9a-f]{64}$/.test(challenge)) return fail(unproven(where, "gave no challenge to answer (an older server?)", true));
      cleanup();
      socket.pause();
      resolve({ socket, authorization: unix === null ? null : `${PROOF_SCHEME} ${clientProof(verifier, challenge, nonce, unix)}` });
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
    socket.once("connect", () =>
      socket.write(`GET ${PROOF_PATH} HTTP/1.1\r\nHost: ${hostHeader}\r\nSpool-Credential: ${credentialId(token)}\r\nSpool-Nonce: ${nonce}\r\n\r\n`),
    );
  });
}
