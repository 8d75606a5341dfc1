import { describe, expect, it } from "vitest";
import { MAX_CLIENT_HELLO_BYTES, readClientHello } from "../../src/runners/egress/tls-client-hello.js";
import { clientHelloFor } from "../helpers/client-hello.js";

/** The same handshake message split over records of at most `size` bytes of payload each. */
function fragmented(hello: Buffer, size: number): Buffer {
  const message = hello.subarray(5);
  const records: Buffer[] = [];
  for (let at = 0; at < message.length; at += size) {
    const part = message.subarray(at, at + size);
    records.push(Buffer.from([22, 3, 1, part.length >> 8, part.length & 0xff]), part);
  }
  return Buffer.concat(records);
}

describe("the server name of a TLS ClientHello", () => {
  it("is read from a whole ClientHello, and none when it names none", () => {
    expect(readClientHello(clientHelloFor("api.github.com"))).toEqual({ state: "done", serverName: "api.github.com" });
    expect(readClientHello(clientHelloFor(null))).toEqual({ state: "done", serverName: null });
  });

  it("waits for more while the record or the message is cut, at any byte", () => {
    const hello = clientHelloFor("api.github.com");
    for (let n = 0; n < hello.length; n++) expect(readClientHello(hello.subarray(0, n)).state, `${n} bytes`).toBe("more");
  });

  it("joins a ClientHello split over several records", () => {
    expect(readClientHello(fragmented(clientHelloFor("api.github.com"), 7))).toEqual({ state: "done", serverName: "api.github.com" });
  });

  it("keeps the bytes of a name as they are, a NUL among them, for the proxy to refuse", () => {
    expect(readClientHello(clientHelloFor("deb.debian.org\u0000.github.com"))).toEqual({ state: "done", serverName: "deb.debian.org\u0000.github.com" });
  });

  it("refuses what is no ClientHello, two server names, and one too long to hold", () => {
    expect(readClientHello(Buffer.from("\u0016\u0003\u0001\u0000\u0004\u0002\u0000\u0000\u0000")).state).toBe("bad");
    expect(readClientHello(Buffer.from([23, 3, 3, 0, 1, 0])).state).toBe("bad");
    const hello = clientHelloFor("a.example");
    // The same extension twice: the extensions' length and the message's grow by the copy.
    const ext = hello.subarray(hello.length - 9 - 18, hello.length - 9);
    const doubled = Buffer.concat([hello.subarray(0, hello.length - 9 - 18), ext, ext, hello.subarray(hello.length - 9)]);
    doubled.writeUInt16BE(doubled.readUInt16BE(3) + ext.length, 3);
    doubled.writeUIntBE(doubled.readUIntBE(6, 3) + ext.length, 6, 3);
    const extAt = 5 + 4 + 2 + 32 + 1 + 4 + 2;
    doubled.writeUInt16BE(doubled.readUInt16BE(extAt) + ext.length, extAt);
    expect(readClientHello(doubled)).toEqual({ state: "bad", why: "a malformed ClientHello (two server_name extensions)" });
    const huge = Buffer.from([22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff]);
    expect(readClientHello(huge)).toEqual({ state: "bad", why: `a ClientHello of ${4 + 0xffffff} bytes` });
    expect(MAX_CLIENT_HELLO_BYTES).toBeGreaterThan(16_384);
  });
});
