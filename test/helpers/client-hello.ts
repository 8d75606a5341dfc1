// A TLS ClientHello as a client sends it (one record), naming a server or none: what the egress proxy's tunnel reads.

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const NAME_TYPE_HOST = 0;

/** A ClientHello naming `serverName` (null: without server_name), as a TLS client sends it. */
export function clientHelloFor(serverName: string | null): Buffer {
  const extensions: Buffer[] = [];
  if (serverName !== null) {
    const name = Buffer.from(serverName, "latin1");
    const entry = Buffer.concat([Buffer.from([NAME_TYPE_HOST]), u16(name.length), name]);
    const list = Buffer.concat([u16(entry.length), entry]);
    extensions.push(Buffer.concat([u16(EXTENSION_SERVER_NAME), u16(list.length), list]));
  }
  // supported_versions: TLS 1.3 and 1.2.
  extensions.push(Buffer.from([0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03]));
  const ext = Buffer.concat(extensions);
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    Buffer.from([0]),
    u16(2),
    Buffer.from([0x13, 0x01]),
    Buffer.from([1, 0]),
    u16(ext.length),
    ext,
  ]);
  const handshake = Buffer.concat([Buffer.from([HANDSHAKE_CLIENT_HELLO, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([RECORD_HANDSHAKE, 3, 1]), u16(handshake.length), handshake]);
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
