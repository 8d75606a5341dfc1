import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
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

/** Why a TCP server was not trusted with the token (nothing was sent to it but the credential's id and a nonce). */
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
function unproven(address: string, what: string): ServerProofError {
  return new ServerProofError(
    `${address} ${what}: it did not prove it is the Spool server holding this token, and the token was not sent. Reach your home's server over its Unix socket (the default when $SPOOL_HOME/spool.sock exists: is \`spool serve\` running for this home?), or name the right server with --server / $SPOOL_SERVER`,
  );
}

/**
 * Opens a TCP connection to `host:port` and has the server prove it holds `token`'s verifier (see above); resolves
 * with the connection, ready for the WebSocket upgrade, or rejects without having sent the token.
 */
export function provenConnection(host: string, port: number, token: string, timeoutMs = 10_000): Promise<Socket> {
  const nonce = randomBytes(32).toString("hex");
  const hostHeader = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let head = Buffer.alloc(0);
    const fail = (error: Error) => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(unproven(hostHeader, `gave no proof within ${timeoutMs} ms`)), timeoutMs);
    const onError = (error: Error) => fail(error);
    const onClose = () => fail(unproven(hostHeader, "closed the connection"));
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
        if (head.length > MAX_HEAD_BYTES) fail(unproven(hostHeader, "answered with something else"));
        return;
      }
      const lines = head.subarray(0, end).toString("latin1").split("\r\n");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0);
      const headers = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      if (status === 401) return fail(new ServerProofError(`${hostHeader} does not know this token (HTTP 401); the token was not sent`, 401));
      const given = Buffer.from(headers.get("spool-proof") ?? "", "hex");
      const expected = Buffer.from(serverProof(tokenVerifier(token), nonce, endpoint(socket.remoteAddress, socket.remotePort)), "hex");
      if (status !== 204 || given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return fail(unproven(hostHeader, `answered HTTP ${status || "?"} with ${headers.has("spool-proof") ? "a wrong proof" : "no proof"}`));
      }
      if (end + 4 !== head.length) return fail(unproven(hostHeader, "sent more than a proof"));
      cleanup();
      socket.pause();
      resolve(socket);
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
    socket.once("connect", () =>
      socket.write(`GET ${PROOF_PATH} HTTP/1.1\r\nHost: ${hostHeader}\r\nSpool-Credential: ${credentialId(token)}\r\nSpool-Nonce: ${nonce}\r\n\r\n`),
    );
  });
}
