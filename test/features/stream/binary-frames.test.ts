// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { WebSocketServer } from "ws";
import { credentialId, tokenVerifier } from "../../../src/client/server-proof.js";
import { SpoolClient } from "../../../src/client/spool-client.js";
import { connectWebSocket } from "../../../src/client/ws-transport.js";
import { createLogger } from "../../../src/logger.js";
import { BINARY_FRAME_VERSION, encodeBinaryFrame } from "../../../src/protocol/binary-frame.js";
import { ENTRY } from "../../../src/protocol/status.js";
import { ChannelSender, Slots } from "../../../src/runners/client/channel-sender.js";
import { RunnerClient } from "../../../src/runners/client/runner-client.js";
import { LocalBackend } from "../../../src/runners/local/local.js";
import { answerProof } from "../../../src/server/transports.js";
import { proposeAndAccept } from "../../helpers/proposals.js";
import { finished } from "../../helpers/runners.js";
import { startTestServer, type TestServer } from "../../helpers/server.js";

/**
 * Binary frames (SPEC §4): a `stream` chunk as raw bytes in one WebSocket binary message, taken exactly like the
 * JSON text call (same checks, order, seq, limits), used by clients and runners when the server advertises it.
 */

/** Counts what a client's transport sends as binary frames and as text. */
function counted(client: SpoolClient): { binary: number; text: number } {
  const counts = { binary: 0, text: 0 };
  const t = client.transport;
  const send = t.send.bind(t);
  const sendBinary = t.sendBinary!.bind(t);
  t.send = (text, flushed) => {
    counts.text++;
    send(text, flushed);
  };
  t.sendBinary = (data, flushed) => {
    counts.binary++;
    sendBinary(data, flushed);
  };
  return counts;
}

async function body(c: SpoolClient, run: string, path: string): Promise<{ bytes: Buffer; status: number; size: number }> {
  const entry = await c.call("entry/get", { run, path, encoding: "base64" });
  return { bytes: Buffer.from(entry.body, "base64"), status: entry.status, size: entry.bytes };
}

/** A raw WebSocket, initialized: sends whatever bytes the test makes, reads the next reply. */
async function rawSocket(ts: TestServer, project: string) {
  const transport = await connectWebSocket(ts.server.url, { token: ts.server.token });
  const replies: any[] = [];
  const waiting: ((reply: any) => void)[] = [];
  let closed: { code: number; reason: string } | null = null;
  transport.onMessage((text) => {
    const reply = JSON.parse(text);
    const w = waiting.shift();
    if (w) w(reply);
    else replies.push(reply);
  });
  transport.onClose((code, reason) => {
    closed = { code, reason };
  });
  const next = () => (replies.length ? Promise.resolve(replies.shift()) : new Promise<any>((r) => waiting.push(r)));
  transport.send(JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { project, root: ts.root, protocolVersion: "1.0" } }));
  const init = await next();
  return { transport, next, init, closed: () => closed };
}

const frame = (id: number, params: object, bytes: Uint8Array | string) =>
  encodeBinaryFrame({ jsonrpc: "2.0", id, method: "stream", params }, typeof bytes === "string" ? Buffer.from(bytes) : bytes);

describe("the frame's layout", () => {
  it("is the version byte, the header's UTF-8 length big-endian, the header, then the bytes; one frame after another leaves none of the last", () => {
    const layout = (request: object, bytes: Buffer) => {
      const header = Buffer.from(JSON.stringify(request));
      const length = Buffer.alloc(4);
      length.writeUInt32BE(header.length);
      return Buffer.concat([Buffer.from([BINARY_FRAME_VERSION]), length, header, bytes]);
    };
    const long = { jsonrpc: "2.0" as const, id: 7, method: "stream", params: { run: "é✓😀".repeat(50), path: "p", channel: 1, seq: 3 } };
    const short = { jsonrpc: "2.0" as const, id: "8", method: "stream", params: { run: "r", path: "q", channel: 2, seq: 4 } };
    expect(Buffer.from(encodeBinaryFrame(long, Buffer.from([0, 1, 255])))).toEqual(layout(long, Buffer.from([0, 1, 255])));
    expect(Buffer.from(encodeBinaryFrame(short, Buffer.alloc(0)))).toEqual(layout(short, Buffer.alloc(0)));
    // A header over the limit (in bytes, not characters) is refused.
    const over = { jsonrpc: "2.0" as const, id: 9, method: "stream", params: { run: "é".repeat(8200) } };
    expect(() => encodeBinaryFrame(over, Buffer.from("x"))).toThrow(RangeError);
  });
});

describe("binary frames for stream chunks", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false, limits: { maxChunkBytes: 1024, maxMessageBytes: 64 * 1024 } });
  });
  afterAll(() => ts.stop());

  it("the server advertises them at initialize and in rpc.discover", async () => {
    const c = await ts.client();
    const init = await c.initialize("advertised", { root: ts.root });
    expect(init.binaryFrames).toEqual({ version: BINARY_FRAME_VERSION, methods: { stream: "chunk" } });
    expect(c.bytes).toBe(true);
    const doc: any = await c.call("rpc.discover", {});
    const methods = new Map(doc.methods.map((m: any) => [m.name, m]));
    expect((methods.get("stream") as any)["x-binary-frame"]).toEqual({ field: "chunk" });
    expect((methods.get("entry/get") as any)["x-binary-frame"]).toBeUndefined();
  });

  it("chunks sent as bytes are stored byte for byte, exactly once and in order, retries acknowledged as duplicates", async () => {
    const c = await ts.clientIn("exact");
    const counts = counted(c);
    const { path, stdout } = await proposeAndAccept(c, c, "x", "binary", { runner: "self" });
    // Bytes no JSON text could carry as utf8: every byte value, in 256-byte chunks, all in flight at once.
    const chunks = Array.from({ length: 6 }, (_, i) => Buffer.from(Array.from({ length: 256 }, (_, b) => (b + i) % 256)));
    const before = counts.binary;
    const acks = await Promise.all(chunks.map((chunk, i) => c.request("stream", { run: "x", path, channel: 1, seq: i + 1, chunk })));
    expect(counts.binary - before).toBe(6);
    expect(acks.map((a) => [a.seq, a.duplicate])).toEqual(chunks.map((_, i) => [i + 1, false]));
    // A runner that lost the acknowledgements sends seq 2-4 again, as bytes and as JSON text: nothing is appended twice.
    const retries = await Promise.all([
      c.request("stream", { run: "x", path, channel: 1, seq: 2, chunk: chunks[1] }),
      c.call("stream", { run: "x", path, channel: 1, seq: 3, chunk: chunks[2]!.toString("base64"), encoding: "base64" }),
      c.request("stream", { run: "x", path, channel: 1, seq: 4, chunk: chunks[3] }),
    ]);
    expect(retries.map((r) => r.duplicate)).toEqual([true, true, true]);
    // A retry with other bytes is refused.
    await expect(c.request("stream", { run: "x", path, channel: 1, seq: 5, chunk: Buffer.from("other") })).rejects.toMatchObject({
      data: { code: "CONFLICT" },
    });
    const stored = await body(c, "x", stdout);
    expect(stored.bytes.equals(Buffer.concat(chunks))).toBe(true);
    expect(stored.size).toBe(6 * 256);
  });

  it("a client reuses the frame of an answered request, never one still waiting: every chunk is stored byte for byte", async () => {
    const large = await startTestServer({ localRunner: false, limits: { maxChunkBytes: 64 * 1024, maxMessageBytes: 256 * 1024 } });
    onTestFinished(() => large.stop());
    const c = await large.clientIn("reuse");
    const { path, stdout } = await proposeAndAccept(c, c, "x", "reuse", { runner: "self" });
    const memory = new Set<ArrayBufferLike>();
    const t = c.transport;
    const sendBinary = t.sendBinary!.bind(t);
    t.sendBinary = (data, flushed) => {
      memory.add(data.buffer);
      sendBinary(data, flushed);
    };
    // 40 distinct chunks of the server's largest size (a frame of 16 KiB or more is kept; smaller ones come from a slab),
    // and a few shorter ones, up to 6 unanswered at a time.
    const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(i % 7 === 3 ? 20_000 + i : 32 * 1024, i + 1));
    const inFlight = new Set<Promise<unknown>>();
    for (const [i, chunk] of chunks.entries()) {
      const call: Promise<unknown> = c.request("stream", { run: "x", path, channel: 1, seq: i + 1, chunk }).then(() => inFlight.delete(call));
      inFlight.add(call);
      if (inFlight.size >= 6) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    // Frames went in far fewer buffers than chunks: the answered ones were written again.
    expect(memory.size).toBeLessThanOrEqual(14);
    // Small frames are cut one after another from a shared slab, never kept: no part of it is written twice.
    const small: { buffer: ArrayBufferLike; start: number; end: number }[] = [];
    t.sendBinary = (data, flushed) => {
      small.push({ buffer: data.buffer, start: data.byteOffset, end: data.byteOffset + data.byteLength });
      sendBinary(data, flushed);
    };
    for (let i = 0; i < 5; i++) await c.request("stream", { run: "x", path, channel: 1, seq: 41 + i, chunk: Buffer.alloc(100, 200 + i) });
    expect(small).toHaveLength(5);
    expect(new Set(small.map((f) => f.buffer)).size).toBeLessThan(5);
    for (const [i, a] of small.entries()) {
      expect(memory.has(a.buffer)).toBe(false);
      for (const b of small.slice(i + 1)) if (a.buffer === b.buffer) expect(a.end <= b.start || b.end <= a.start).toBe(true);
    }
    chunks.push(...Array.from({ length: 5 }, (_, i) => Buffer.alloc(100, 200 + i)));
    const stored = await body(c, "x", stdout);
    expect(stored.bytes.equals(Buffer.concat(chunks))).toBe(true);
  });

  it("JSON text and binary frames mix on one channel and keep the order they were sent in", async () => {
    const c = await ts.clientIn("mixed");
    const counts = counted(c);
    const { path, stdout } = await proposeAndAccept(c, c, "m", "mixed", { runner: "self" });
    const before = { ...counts };
    const calls: Promise<unknown>[] = [];
    const expected: string[] = [];
    for (let i = 1; i <= 40; i++) {
      const line = `line ${i} ${"é".repeat(i % 5)}\n`;
      expected.push(line);
      // Nothing awaited until the end: the server alone keeps the order across both kinds of message.
      calls.push(c.request("stream", { run: "m", path, channel: 1, seq: i, chunk: i % 2 ? Buffer.from(line) : line }));
    }
    await Promise.all(calls);
    expect(counts.binary - before.binary).toBe(20);
    expect(counts.text - before.text).toBe(20);
    await c.call("stream/completed", { run: "m", path, exit_code: 0 });
    const stored = await body(c, "m", stdout);
    expect(stored.bytes.toString()).toBe(expected.join(""));
    expect(stored.status).toBe(ENTRY.done);
  });

  it("a binary chunk goes through the same checks: size, ownership, seq gaps, closed channels", async () => {
    const owner = await ts.clientIn("checks");
    const other = await ts.clientIn("checks");
    const { path, stdout } = await proposeAndAccept(owner, owner, "k", "checked", { runner: "self" });
    await expect(owner.request("stream", { run: "k", path, channel: 1, seq: 1, chunk: Buffer.alloc(1025, 0x61) })).rejects.toMatchObject({
      data: { code: "PAYLOAD_TOO_LARGE", limit: 1024, bytes: 1025 },
    });
    await expect(other.request("stream", { run: "k", path, channel: 1, seq: 1, chunk: Buffer.from("not mine\n") })).rejects.toMatchObject({
      data: { code: "NOT_OWNER" },
    });
    await expect(owner.request("stream", { run: "k", path, channel: 1, seq: 2, chunk: Buffer.from("ahead\n") })).rejects.toMatchObject({
      data: { code: "SEQ_GAP", expected: 1 },
    });
    await expect(owner.request("stream", { run: "k", path, channel: 9, seq: 1, chunk: Buffer.from("x") })).rejects.toMatchObject({
      data: { code: "NOT_FOUND" },
    });
    await expect(owner.request("stream", { run: "k", path, channel: 1, seq: 1, chunk: Buffer.from("x"), encoding: "base64" })).rejects.toMatchObject({
      data: { code: "INVALID_PARAMS" },
    });
    await expect(owner.request("stream", { run: "k", path, channel: 0.5, seq: 1, chunk: Buffer.from("x") })).rejects.toMatchObject({
      data: { code: "INVALID_PARAMS" },
    });
    expect((await body(owner, "k", stdout)).size).toBe(0);
    await owner.request("stream", { run: "k", path, channel: 1, seq: 1, chunk: Buffer.alloc(1024, 0x62) });
    await owner.call("stream/completed", { run: "k", path, exit_code: 0 });
    await expect(owner.request("stream", { run: "k", path, channel: 1, seq: 2, chunk: Buffer.from("late") })).rejects.toMatchObject({
      data: { code: "STREAM_CLOSED" },
    });
    expect((await body(owner, "k", stdout)).bytes.equals(Buffer.alloc(1024, 0x62))).toBe(true);
  });

  it("binary frames count against the connection's unacknowledged calls (maxUnackedChunks); refused ones store nothing", async () => {
    const small = await startTestServer({ localRunner: false, limits: { maxUnackedChunks: 4 } });
    try {
      const c = await small.clientIn("unacked");
      const { path, stdout } = await proposeAndAccept(c, c, "u", "burst", { runner: "self" });
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          c.request("stream", { run: "u", path, channel: 1, chunk: Buffer.from(`${i}\n`) }).then(
            () => ({ ok: true as const, line: `${i}\n` }),
            (e: { data?: { code?: string } }) => ({ ok: false as const, code: e.data?.code }),
          ),
        ),
      );
      const refused = outcomes.filter((o) => !o.ok);
      expect(refused.length).toBeGreaterThan(0);
      expect(new Set(refused.map((o) => (o.ok ? "" : o.code)))).toEqual(new Set(["LIMIT_EXCEEDED"]));
      expect((await body(c, "u", stdout)).bytes.toString()).toBe(outcomes.flatMap((o) => (o.ok ? [o.line] : [])).join(""));
    } finally {
      await small.stop();
    }
  });

  it("malformed frames get a clear error, store nothing, and leave the connection usable", async () => {
    const owner = await ts.clientIn("malformed");
    const { path, stdout } = await proposeAndAccept(owner, owner, "b", "malformed", { runner: "self" });
    const raw = await rawSocket(ts, "malformed");
    // The raw socket sends every broken shape (it is not the producer's owner: a well-formed frame from it is NOT_OWNER).
    const header = (text: string) => {
      const h = Buffer.from(text);
      const out = Buffer.alloc(5 + h.length + 3);
      out[0] = BINARY_FRAME_VERSION;
      out.writeUInt32BE(h.length, 1);
      h.copy(out, 5);
      out.write("abc", 5 + h.length);
      return out;
    };
    const cases: [string, Uint8Array, { id: unknown; code: string; message: RegExp }][] = [
      ["too short", Uint8Array.of(BINARY_FRAME_VERSION, 0, 0), { id: null, code: "PARSE_ERROR", message: /shorter than/ }],
      ["header length past the end", Uint8Array.of(BINARY_FRAME_VERSION, 0, 0, 1, 0, 0x7b), { id: null, code: "PARSE_ERROR", message: /runs past/ }],
      ["header length zero", Uint8Array.of(BINARY_FRAME_VERSION, 0, 0, 0, 0, 0x61), { id: null, code: "PARSE_ERROR", message: /outside/ }],
      ["header not JSON", header("{not json"), { id: null, code: "PARSE_ERROR", message: /not UTF-8 JSON/ }],
      ["header not UTF-8", header('{"id":1,"x":"\xff"}').fill(0xff, 12, 13), { id: null, code: "PARSE_ERROR", message: /not UTF-8 JSON/ }],
      ["header an array", header("[1,2]"), { id: null, code: "PARSE_ERROR", message: /one JSON-RPC request/ }],
      ["header without an id", header(JSON.stringify({ jsonrpc: "2.0", method: "stream", params: {} })), { id: null, code: "PARSE_ERROR", message: /no id/ }],
      [
        "params not an object",
        header(JSON.stringify({ jsonrpc: "2.0", id: 7, method: "stream", params: [1] })),
        { id: 7, code: "INVALID_REQUEST", message: /params/ },
      ],
      [
        "the bytes field also in the header",
        frame(8, { run: "b", path, channel: 1, seq: 1, chunk: "abc" }, "abc"),
        { id: 8, code: "INVALID_PARAMS", message: /leave it out of the header/ },
      ],
      [
        "a method that takes no bytes",
        encodeBinaryFrame({ jsonrpc: "2.0", id: 9, method: "ping", params: {} }, Buffer.from("x")),
        { id: 9, code: "INVALID_PARAMS", message: /takes no binary frame/ },
      ],
      [
        "an unknown method",
        encodeBinaryFrame({ jsonrpc: "2.0", id: 10, method: "nope", params: {} }, Buffer.from("x")),
        { id: 10, code: "METHOD_NOT_FOUND", message: /nope/ },
      ],
      ["not the owner", frame(11, { run: "b", path, channel: 1, seq: 1 }, "abc"), { id: 11, code: "NOT_OWNER", message: /./ }],
    ];
    for (const [what, bytes, expected] of cases) {
      raw.transport.sendBinary!(bytes);
      const reply = await raw.next();
      expect(reply, what).toMatchObject({ jsonrpc: "2.0", id: expected.id, error: { data: { code: expected.code } } });
      expect(reply.error.message, what).toMatch(expected.message);
    }
    // Still open and answering; nothing was stored.
    raw.transport.send(JSON.stringify({ jsonrpc: "2.0", id: 99, method: "ping", params: {} }));
    expect(await raw.next()).toMatchObject({ id: 99, result: { pong: true } });
    expect(raw.closed()).toBeNull();
    expect((await body(owner, "b", stdout)).size).toBe(0);
    // JSON text in a binary message is still JSON text (as before binary frames).
    raw.transport.sendBinary!(Buffer.from(JSON.stringify({ jsonrpc: "2.0", id: 100, method: "ping", params: {} })));
    expect(await raw.next()).toMatchObject({ id: 100, result: { pong: true } });
    raw.transport.close();
  });

  it("a frame over the WebSocket message limit (maxMessageBytes) closes the connection with 1009 and stores nothing", async () => {
    const c = await ts.clientIn("oversized");
    const { path, stdout } = await proposeAndAccept(c, c, "o", "oversized", { runner: "self" });
    const closed = new Promise<number>((resolve) => c.onClose((code) => resolve(code)));
    const call = c.request("stream", { run: "o", path, channel: 1, seq: 1, chunk: Buffer.alloc(64 * 1024 + 1, 0x61) });
    await expect(call).rejects.toThrow(/connection closed/);
    expect(await closed).toBe(1009);
    const check = await ts.clientIn("oversized");
    expect((await body(check, "o", stdout)).size).toBe(0);
  });
});

describe("runners stream through binary frames", () => {
  let ts: TestServer;
  let runner: RunnerClient;
  const sent = { binary: 0, text: 0 };
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false, sandbox: "full" });
    await ts.clientIn("runner");
    runner = new RunnerClient({
      connect: async () => {
        const client = await SpoolClient.connect(ts.server.url, { token: ts.server.token });
        // Kept in `sent` for the test, whatever connection the runner is on.
        const t = client.transport;
        const send = t.send;
        const sendBinary = t.sendBinary!;
        t.send = (text, flushed) => {
          sent.text++;
          send(text, flushed);
        };
        t.sendBinary = (data, flushed) => {
          sent.binary++;
          sendBinary(data, flushed);
        };
        return client;
      },
      project: "runner",
      name: "ws-runner",
      backend: new LocalBackend(),
      default: true,
      log: createLogger("silent"),
      maxChunkBytes: 4096,
    });
    await runner.start();
  });
  afterAll(async () => {
    await runner.stop();
    await ts.stop();
  });

  it("a WebSocket runner sends a process's output, every byte value included, as binary frames end to end", async () => {
    const c = await ts.clientIn("runner");
    const before = sent.binary;
    // 64 KiB of every byte value on stdout (cut into 4 KiB chunks), a line on stderr.
    const { path, stdout, stderr } = await proposeAndAccept(
      c,
      c,
      "r",
      'i=0; while [ $i -lt 256 ]; do printf "\\\\$(printf %o $i)"; i=$((i+1)); done > /tmp/spool-all-bytes.$$; for k in $(seq 256); do cat /tmp/spool-all-bytes.$$; done; rm /tmp/spool-all-bytes.$$; echo done >&2',
    );
    const done = await finished(c, "r", { path, stdout, stderr });
    const all = Buffer.from(Array.from({ length: 256 }, (_, b) => b));
    expect(done.out.equals(Buffer.concat(Array.from({ length: 256 }, () => all)))).toBe(true);
    expect(done.err.toString()).toBe("done\n");
    expect(done.stdout.status).toBe(ENTRY.done);
    // 64 KiB in chunks of at most 4 KiB: at least 16 frames, and no chunk went as text.
    expect(sent.binary - before).toBeGreaterThanOrEqual(17);
  });
});

describe("a server that advertises no binary frames gets JSON text", () => {
  /** An older server: answers initialize without `binaryFrames`, acknowledges `stream` and records how each message came. */
  let wss: WebSocketServer;
  let onClose = () => {};
  const received: { binary: boolean; message: any }[] = [];
  beforeAll(async () => {
    // It proves it holds the token "t" (src/client/server-proof.ts), as every Spool server does over TCP.
    const http = createServer((request, response) => answerProof(request, response, (id) => (id === credentialId("t") ? tokenVerifier("t") : null)));
    wss = new WebSocketServer({ server: http });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", () => resolve()));
    onClose = () => http.close();
    wss.on("connection", (ws) =>
      ws.on("message", (data, isBinary) => {
        const message = isBinary ? null : JSON.parse(data.toString());
        received.push({ binary: isBinary, message });
        if (!message) return;
        const result =
          message.method === "initialize"
            ? { protocolVersion: "1.0", server: { name: "spool", version: "old" }, projectId: 1, project: { name: "p", root: "/" }, connectionId: "c" }
            : { channel: message.params.channel, seq: message.params.seq, bytes: 0, duplicate: false };
        ws.send(JSON.stringify({ jsonrpc: "2.0", id: message.id, result }));
      }),
    );
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    onClose();
  });

  it("the client and a runner's channel sender send chunks as utf8 or base64 text, never as frames", async () => {
    const client = await SpoolClient.connect(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, { token: "t" });
    await client.initialize("p");
    expect(client.bytes).toBe(false);
    expect(client.binaryField("stream")).toBeUndefined();
    const slots = new Slots(8);
    const sender = new ChannelSender(
      { current: () => client, tryAcquire: () => slots.tryAcquire(), release: () => slots.release(), whenFree: (g) => slots.whenFree(g) },
      { run: "r", path: "sh://turn_1/x", channel: 1 },
      { window: 4, maxChunkBytes: 8, highWaterBytes: 1024, onRefused: () => undefined },
    );
    await sender.push(Buffer.from("hello, world\n"));
    await sender.push(Buffer.from([0xff, 0xfe, 0x00]));
    await sender.end();
    const streamed = received.filter((r) => r.binary || r.message.method === "stream");
    expect(streamed.every((r) => !r.binary)).toBe(true);
    const bytes = Buffer.concat(streamed.map((r) => Buffer.from(r.message.params.chunk, r.message.params.encoding ?? "utf8")));
    expect(bytes.equals(Buffer.concat([Buffer.from("hello, world\n"), Buffer.from([0xff, 0xfe, 0x00])]))).toBe(true);
    client.close();
  });
});
