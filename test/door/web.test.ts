import { once } from "node:events";
import { createServer, type Server, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type SendLimits, sendResponse } from "../../src/door/web.js";

/*
 * The MCP endpoint's answers cross from the v2 SDK's web Response to node:http through sendResponse: a reader
 * that takes its time gets everything, and a client that stops reading is cut off (past a backlog, or after a
 * stall) with the SDK's stream cancelled, so neither the SDK's queue nor the response's buffer grows without end.
 * Real sockets on loopback; the client is a raw TCP socket that reads or does not.
 */

const CHUNK = 64 * 1024;

interface Body {
  response: Response;
  /** Bytes the body handed out so far. */
  produced: () => number;
  /** Resolves when the body was cancelled (the reader let go of it). */
  cancelled: Promise<void>;
}

/**
 * A body of `total` bytes (Infinity: without end), a 64 KiB chunk each time it is read; with `hang`, after them
 * it neither ends nor gives more (an SSE stream with nothing to say).
 */
function body(total: number, hang = false): Body {
  let produced = 0;
  let onCancel: () => void = () => undefined;
  const cancelled = new Promise<void>((resolve) => {
    onCancel = resolve;
  });
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (produced >= total) return hang ? new Promise<void>(() => undefined) : controller.close();
      const size = Math.min(CHUNK, total - produced);
      controller.enqueue(new Uint8Array(size).fill(97));
      produced += size;
    },
    cancel() {
      onCancel();
    },
  });
  return { response: new Response(stream, { headers: { "content-type": "text/event-stream" } }), produced: () => produced, cancelled };
}

let server: Server | null = null;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  server?.closeAllConnections();
  server?.close();
  server = null;
});

/**
 * A server answering its one request with `answer` through sendResponse; resolves with a raw client socket and the
 * response's end. With `close`, the request asks for the connection to end with the answer (not kept alive for 5 s).
 */
async function serve(answer: Body, limits: SendLimits, close = false) {
  let sent!: Promise<void>;
  let closed!: Promise<unknown>;
  let gotResponse: (response: ServerResponse) => void = () => undefined;
  const nodeResponse = new Promise<ServerResponse>((resolve) => {
    gotResponse = resolve;
  });
  server = createServer((_request, response) => {
    closed = once(response, "close");
    gotResponse(response);
    sent = sendResponse(answer.response, response, limits);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  const socket = connect(port, "127.0.0.1");
  sockets.push(socket);
  await once(socket, "connect");
  socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${close ? "Connection: close\r\n" : ""}\r\n`);
  const response = await nodeResponse;
  return { socket, response, sent: () => sent, closed: () => closed };
}

describe("sendResponse: an SDK answer written to node:http", () => {
  it("a reader that pauses and comes back gets every byte", async () => {
    const total = 24 * 1024 * 1024;
    const answer = body(total);
    // The connection ends with the answer: the client's end is the answer's.
    const { socket, sent } = await serve(answer, { backlogBytes: 64 * 1024 * 1024, stallMs: 60_000 }, true);
    socket.pause();
    // Held until the body is ahead of the reader by more than the socket takes, then read to the end.
    let received = 0;
    socket.on("data", (data: Buffer) => {
      received += data.length;
    });
    await eventuallyTrue(() => answer.produced() >= 8 * 1024 * 1024);
    socket.resume();
    await sent();
    await once(socket, "end");
    // Headers and chunked framing come on top of the body's bytes.
    expect(received).toBeGreaterThan(total);
    expect(answer.produced()).toBe(total);
  }, 60_000);

  it("a client that stops reading is cut off past the backlog, and the SDK's stream is cancelled", async () => {
    const answer = body(Number.POSITIVE_INFINITY);
    const backlogBytes = 1024 * 1024;
    const { socket, response, sent, closed } = await serve(answer, { backlogBytes, stallMs: 600_000 });
    socket.pause();
    await closed();
    await answer.cancelled;
    await sent();
    // What was handed out is what the kernel's buffers took, the backlog, and one chunk: not without end.
    expect(answer.produced()).toBeLessThan(64 * 1024 * 1024);
    expect(response.destroyed).toBe(true);
  }, 60_000);

  it("a client that stops reading a stream gone quiet is cut off after the stall, and the SDK's stream is cancelled", async () => {
    // A burst fills the socket, then nothing more comes and the stream stays open: the backlog bound is never
    // reached, the stall ends it.
    const answer = body(32 * 1024 * 1024, true);
    const { socket, response, sent, closed } = await serve(answer, { backlogBytes: 1024 * 1024 * 1024, stallMs: 300 });
    socket.pause();
    await closed();
    await answer.cancelled;
    await sent();
    expect(response.destroyed).toBe(true);
    // Cut off: the client, reading again, finds the connection ended short of what was written.
    expect(await readToEnd(socket)).toBeLessThan(32 * 1024 * 1024);
  }, 60_000);

  it("a client that does not take the end of an answer is cut off after the stall", async () => {
    const answer = body(32 * 1024 * 1024);
    const { socket, response, sent, closed } = await serve(answer, { backlogBytes: 1024 * 1024 * 1024, stallMs: 300 });
    socket.pause();
    await sent();
    await closed();
    expect(answer.produced()).toBe(32 * 1024 * 1024);
    expect(response.destroyed).toBe(true);
    expect(await readToEnd(socket)).toBeLessThan(32 * 1024 * 1024);
  }, 60_000);
});

/** Reads a paused socket until the connection ends; the bytes it got. */
async function readToEnd(socket: Socket): Promise<number> {
  let received = 0;
  socket.on("data", (data: Buffer) => {
    received += data.length;
  });
  socket.on("error", () => undefined);
  const ended = once(socket, "close");
  socket.resume();
  await ended;
  return received;
}

/** Waits for `test` to hold, checking as the event loop turns (a body is read as fast as the socket takes it). */
async function eventuallyTrue(test: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!test()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setImmediate(resolve));
  }
}
