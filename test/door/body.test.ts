import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { DROPPED_AT_MOST, readBody } from "../../src/door/body.js";
import { answerError, DoorError } from "../../src/door/errors.js";

/*
 * A body over the door's bound is answered 413. A server that closed the connection with the body still arriving
 * would reset it, and the reset can destroy the 413 before the client reads it: the client saw its request fail
 * ("fetch failed"), not the refusal. So the rest is read and dropped first, and the connection stays usable.
 * A raw client on loopback, which sends the body in parts, after the server could already have answered.
 */

const MAX = 1024;

let server: Server | null = null;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  server?.closeAllConnections();
  server?.close();
  server = null;
});

/** A server whose every request's body goes through readBody (at most MAX bytes): 200 with its size, or the refusal. */
async function door(): Promise<number> {
  server = createServer((request, response) => {
    readBody(request, MAX, { until: performance.now() + 30_000, ms: 30_000 }).then(
      (body) => response.writeHead(200, { "Content-Length": String(String(body.length).length) }).end(String(body.length)),
      (error) => answerError(response, error instanceof DoorError ? error : new DoorError(500, String(error))),
    );
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as { port: number }).port;
}

/** A raw connection and what it has read so far. */
async function client(port: number): Promise<{ socket: Socket; text: () => string; closed: Promise<unknown> }> {
  const socket = connect(port, "127.0.0.1");
  sockets.push(socket);
  await once(socket, "connect");
  let text = "";
  socket.on("data", (part) => (text += part.toString("latin1")));
  const closed = once(socket, "close");
  return { socket, text: () => text, closed };
}

const request = (length: number) => `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

/** The statuses of the first `count` answers on the connection; fails when it closes (or is reset) before them. */
async function answers(read: () => string, socket: Socket, count: number): Promise<string[]> {
  for (;;) {
    const found = read().match(/HTTP\/1\.1 \d{3}/g) ?? [];
    if (found.length >= count) return found.map((head) => head.slice(9, 12));
    if (socket.destroyed) throw new Error(`the connection ended after ${found.length} answer(s): ${JSON.stringify(read().slice(0, 300))}`);
    await Promise.race([once(socket, "data"), once(socket, "close")]);
  }
}

describe("a body over the door's bound", () => {
  it("is read and dropped before the 413: the connection stays open for the rest and the next request", async () => {
    const port = await door();
    const { socket, text } = await client(port);
    const size = 2 * 1024 * 1024;
    socket.write(request(size));
    socket.write(Buffer.alloc(size, 97));
    socket.write(`${request(2)}{}`);
    expect(await answers(text, socket, 2)).toEqual(["413", "200"]);
    expect(text()).toContain("The body is over 1024 bytes");
  });

  it("a body declared beyond what is worth reading is refused unread, and its connection closed after the answer", async () => {
    const port = await door();
    const { socket, text, closed } = await client(port);
    socket.write(request(DROPPED_AT_MOST + 1));
    await closed;
    expect(text()).toMatch(/^HTTP\/1\.1 413 /);
    expect(text()).toContain("Connection: close");
  });
});
