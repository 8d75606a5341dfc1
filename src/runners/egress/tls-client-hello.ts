/*
 * The server name a TLS ClientHello asks for (RFC 8446 §4.1.2, RFC 6066 §3 `server_name`), read from the first bytes a
 * client sends through the egress proxy's tunnel (proxy.ts). Only the handshake's plaintext start is read; nothing
 * is decrypted or changed. A ClientHello may be split over several records: their payloads are joined.
 */

/** At most this many bytes are held while the ClientHello is incomplete (a real one is a few KiB). */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

/** What the first bytes say: more are needed, the name asked for (null: none), or why they are no ClientHello. */
export type ClientHelloRead = { state: "more" } | { state: "done"; serverName: string | null } | { state: "bad"; why: string };

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const NAME_TYPE_HOST = 0;

/** Reads `bytes` (everything the client sent so far, from its first byte) as TLS records holding a ClientHello. */
export function readClientHello(bytes: Buffer): ClientHelloRead {
  const parts: Buffer[] = [];
  let joined = 0;
  let at = 0;
  let needed: number | null = null;
  // Records until the handshake message (4-byte header + its length) is whole.
  while (needed === null || joined < needed) {
    if (bytes.length < at + 5) return more(bytes);
    if (bytes[at] !== RECORD_HANDSHAKE) return { state: "bad", why: `a record of type ${bytes[at]} before the ClientHello ended` };
    if (bytes[at + 1] !== 3) return { state: "bad", why: "not a TLS record (version byte)" };
    const length = bytes.readUInt16BE(at + 3);
    if (length === 0 || length > 16_384 + 2048) return { state: "bad", why: `a record of ${length} bytes` };
    if (bytes.length < at + 5 + length) return more(bytes);
    parts.push(bytes.subarray(at + 5, at + 5 + length));
    joined += length;
    at += 5 + length;
    if (needed === null && joined >= 4) {
      const head = Buffer.concat(parts);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return { state: "bad", why: `handshake message ${head[0]} where a ClientHello comes first` };
      needed = 4 + head.readUIntBE(1, 3);
      if (needed > MAX_CLIENT_HELLO_BYTES) return { state: "bad", why: `a ClientHello of ${needed} bytes` };
    }
  }
  return serverNameOf(Buffer.concat(parts).subarray(4, needed));
}

const more = (bytes: Buffer): ClientHelloRead =>
  bytes.length >= MAX_CLIENT_HELLO_BYTES ? { state: "bad", why: `no whole ClientHello in its first ${MAX_CLIENT_HELLO_BYTES} bytes` } : { state: "more" };

/** The server_name extension of a ClientHello's body (after the handshake header). */
function serverNameOf(body: Buffer): ClientHelloRead {
  const bad = (why: string): ClientHelloRead => ({ state: "bad", why: `a malformed ClientHello (${why})` });
  // legacy_version (2), random (32), then session id, cipher suites and compression methods, each with its length.
  let at = 34;
  if (body.length < at + 1) return bad("too short");
  at += 1 + body[at]!;
  if (body.length < at + 2) return bad("no cipher suites");
  at += 2 + body.readUInt16BE(at);
  if (body.length < at + 1) return bad("no compression methods");
  at += 1 + body[at]!;
  // No extensions at all: an old client, naming no server.
  if (at === body.length) return { state: "done", serverName: null };
  if (body.length < at + 2) return bad("a cut extensions length");
  const end = at + 2 + body.readUInt16BE(at);
  if (end !== body.length) return bad("the extensions' length is not the rest of the message");
  at += 2;
  let serverName: string | null = null;
  let seen = false;
  while (at < end) {
    if (end < at + 4) return bad("a cut extension");
    const type = body.readUInt16BE(at);
    const length = body.readUInt16BE(at + 2);
    const data = body.subarray(at + 4, at + 4 + length);
    if (data.length !== length) return bad("a cut extension");
    at += 4 + length;
    if (type !== EXTENSION_SERVER_NAME) continue;
    // At most one of each extension (RFC 8446 §4.2): a second server_name could be read otherwise by the server.
    if (seen) return bad("two server_name extensions");
    seen = true;
    if (length < 2 || data.readUInt16BE(0) !== length - 2) return bad("a server_name list of the wrong length");
    for (let i = 2; i < length; ) {
      if (length < i + 3) return bad("a cut server name");
      const nameType = data[i]!;
      const nameLength = data.readUInt16BE(i + 1);
      if (length < i + 3 + nameLength) return bad("a cut server name");
      const name = data.subarray(i + 3, i + 3 + nameLength).toString("latin1");
      i += 3 + nameLength;
      if (nameType !== NAME_TYPE_HOST) continue;
      // One host_name per list (RFC 6066 §3): which of two a server takes is its own choice.
      if (serverName !== null) return bad("two host names in server_name");
      serverName = name;
    }
  }
  return { state: "done", serverName };
}
