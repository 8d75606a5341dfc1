import { createHash } from "node:crypto";
import { createServer, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { endpoint, PROOF_PATH, serverProof, tokenVerifier } from "../../src/client/server-proof.js";
import { connectWebSocket } from "../../src/client/ws-transport.js";

/**
 * A bare TCP server that proves it holds the token "t" (src/client/server-proof.ts), completes the WebSocket
 * handshake and hands back the raw bytes of the first frame.
 */
async function captureFirstFrame(host: string, send: (transport: Awaited<ReturnType<typeof connectWebSocket>>) => void) {
  let socket: Socket | undefined;
  const frame = new Promise<Buffer>((resolve) => {
    const server = createServer((s) => {
      socket = s;
      let buffered = Buffer.alloc(0);
      let upgraded = false;
      s.on("data", (d: Buffer) => {
        buffered = Buffer.concat([buffered, d]);
        if (!upgraded) {
          const end = buffered.indexOf("\r\n\r\n");
          if (end === -1) return;
          const head = buffered.subarray(0, end).toString();
          if (head.startsWith(`GET ${PROOF_PATH} `)) {
            const nonce = /spool-nonce: (\S+)/i.exec(head)![1]!;
            s.write(`HTTP/1.1 204 No Content\r\nSpool-Proof: ${serverProof(tokenVerifier("t"), nonce, endpoint(s.localAddress, s.localPort))}\r\n\r\n`);
            buffered = buffered.subarray(end + 4);
            return;
          }
          const key = /sec-websocket-key: (\S+)/i.exec(buffered.subarray(0, end).toString())![1]!;
          const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
          s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
          buffered = buffered.subarray(end + 4);
          upgraded = true;
        }
        if (buffered.length >= 6) {
          resolve(buffered);
          server.close();
        }
      });
    });
    server.listen(0, host, async () => {
      const { port } = server.address() as { port: number };
      send(await connectWebSocket(`ws://${host}:${port}/`, { token: "t" }));
    });
  });
  const bytes = await frame;
  socket?.destroy();
  return bytes;
}

describe("WebSocket transport", () => {
  it("masks frames to a loopback server with an all-zero key, so neither end XORs the payload", async () => {
    const frame = await captureFirstFrame("127.0.0.1", (t) => t.send("hello"));
    expect(frame[1]! & 0x80).toBe(0x80); // the mask bit is still set, as RFC 6455 requires of clients
    expect([...frame.subarray(2, 6)]).toEqual([0, 0, 0, 0]);
    expect(frame.subarray(6, 11).toString()).toBe("hello"); // the payload travels as is
  });
});
