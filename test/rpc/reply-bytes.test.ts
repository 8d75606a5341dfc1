// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { BODY_AS_BYTES } from "../../src/features/entries/get.js";
import { definePlugin } from "../../src/plugins/plugin.js";
import type { ServerConnection } from "../../src/rpc/connection.js";
import type { ReadCap } from "../../src/rpc/read-cap.js";
import { JsonStringBytes, serializeWithField } from "../../src/rpc/reply-bytes.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

const MiB = 1024 * 1024;

/** Every byte value, the escapes JSON.stringify makes, characters of every UTF-8 length, U+2028/U+2029 (left as they are). */
const EVERY_CASE = Buffer.concat([
  Buffer.from(Array.from({ length: 256 }, (_, i) => i).filter((i) => i < 0x80)),
  Buffer.from('quote " backslash \\ slash / \b\f\n\r\t \u0000\u0001\u001f\u007f é € 😀 \u2028 \u2029 \ufeff end\n', "utf8"),
]);
/** Not UTF-8: a lone continuation byte, an overlong form, an encoded surrogate, a cut sequence, 0xff. */
const INVALID = Buffer.from([0x41, 0x80, 0x42, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xe2, 0x82, 0x43, 0xff, 0xf0, 0x9f, 0x98, 0x0a]);

describe("replies built as bytes (src/rpc/reply-bytes.ts)", () => {
  it("a field written from bytes gives exactly the UTF-8 of JSON.stringify of the same reply, for text and base64, valid or not", () => {
    const bodies = [
      Buffer.alloc(0),
      EVERY_CASE,
      INVALID,
      Buffer.concat([EVERY_CASE, INVALID, EVERY_CASE]),
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
      Buffer.from("x".repeat(100_001)),
    ];
    for (const data of bodies) {
      for (const encoding of ["utf8", "base64"] as const) {
        for (let cut = 0; cut < 3; cut++) {
          // Base64 of every length modulo 3.
          const body = data.subarray(0, Math.max(0, data.length - cut));
          const response = {
            jsonrpc: "2.0",
            id: 'id "1"',
            result: { path: "a\nb", body: "", encoding, skipped: undefined, range: { line: 1, lines: 2 }, truncated: false },
          };
          const bytes = serializeWithField(response, { name: "body", value: new JsonStringBytes(body, encoding) });
          const expected = JSON.stringify({ ...response, result: { ...response.result, body: body.toString(encoding) } });
          expect(bytes.toString("utf8")).toBe(expected);
          expect(bytes.equals(Buffer.from(expected, "utf8"))).toBe(true);
        }
      }
    }
  });

  it("a body given in pieces (views of the rows read) gives the same bytes, whatever the pieces cut (a character, an escape's byte, base64's groups)", () => {
    const data = Buffer.concat([EVERY_CASE, INVALID, EVERY_CASE]);
    for (let cut = 1; cut < data.length; cut += 7) {
      for (const pieces of [
        [data.subarray(0, cut), data.subarray(cut)],
        [data.subarray(0, cut >> 1), data.subarray(cut >> 1, cut), data.subarray(cut)],
      ]) {
        for (const bytes of [pieces, [EVERY_CASE.subarray(0, cut % EVERY_CASE.length), EVERY_CASE.subarray(cut % EVERY_CASE.length)]]) {
          for (const encoding of ["utf8", "base64"] as const) {
            const response = { jsonrpc: "2.0", id: 1, result: { body: "", encoding } };
            const got = serializeWithField(response, { name: "body", value: new JsonStringBytes(bytes, encoding) });
            expect(got.toString("utf8")).toBe(JSON.stringify({ ...response, result: { body: Buffer.concat(bytes).toString(encoding), encoding } }));
          }
        }
      }
    }
  });
});

let ts: TestServer | null = null;
afterEach(async () => {
  await ts?.stop();
  ts = null;
});

/** A WebSocket without the client library: the reply's text as it came, and a pause that stops reading. */
async function rawClient(server: TestServer, project: string) {
  const ws = new WebSocket(server.server.url, { headers: { Authorization: `Bearer ${server.server.token}` }, maxPayload: 256 * MiB });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  ws.on("error", () => undefined);
  const texts: string[] = [];
  const waiters: (() => void)[] = [];
  ws.on("message", (data, isBinary) => {
    expect(isBinary).toBe(false);
    texts.push(data.toString());
    for (const wake of waiters.splice(0)) wake();
  });
  /** The next message's text. */
  let read = 0;
  const next = async () => {
    while (texts.length <= read) await new Promise<void>((resolve) => waiters.push(resolve));
    return texts[read++]!;
  };
  const send = (message: unknown) => ws.send(JSON.stringify(message));
  send({ jsonrpc: "2.0", id: "init", method: "initialize", params: { project, root: server.root, protocolVersion: "1.0" } });
  const init = JSON.parse(await next());
  const side = [...server.server.rpc.connections].find((c) => c.id === init.result.connectionId) as ServerConnection;
  return { ws, next, send, side };
}

/** A finished channel holding `data` (sent as base64 chunks of at most 256 KiB). */
async function channel(c: SpoolClient, data: Buffer) {
  const { path, stdout } = await proposeAndAccept(c, c, "r", "bytes", { runner: "self" });
  const step = 256 * 1024;
  for (let at = 0, seq = 1; at < data.length; at += step, seq++) {
    await c.call("stream", { run: "r", path, channel: 1, chunk: data.subarray(at, at + step).toString("base64"), encoding: "base64", seq });
  }
  await c.call("stream/completed", { run: "r", path, exit_code: 0 });
  const got = await c.request("entry/get", { run: "r", path: stdout, encoding: "base64" });
  const stored = Buffer.from(got.body, "base64");
  expect([stored.length, stored.equals(data), got.truncated, got.error]).toEqual([data.length, true, false, undefined]);
  return stdout as string;
}

/** The text JSON.stringify makes of `reply` with `body` in its result's body. */
function stringified(text: string, body: string): string {
  const reply = JSON.parse(text);
  expect(reply.error).toBeUndefined();
  expect(reply.result.body).toBe(body);
  reply.result.body = body;
  return JSON.stringify(reply);
}

describe("entry/get of a large body, sent as bytes", () => {
  it("the reply's text is exactly JSON.stringify of the result, for text (every escape, invalid UTF-8 as U+FFFD) and base64, whole and sliced", async () => {
    ts = await startTestServer({ localRunner: false, limits: { maxReadBytes: 8 * MiB } });
    const c = await ts.clientIn("bytes");
    // Over BODY_AS_BYTES, every case many times, the invalid sequences across chunk boundaries.
    const unit = Buffer.concat([EVERY_CASE, INVALID]);
    const data = Buffer.concat(Array.from({ length: Math.ceil((3 * MiB) / unit.length) }, () => unit));
    expect(data.length).toBeGreaterThan(BODY_AS_BYTES);
    const path = await channel(c, data);
    const r = await rawClient(ts, "bytes");
    const reads = [
      { params: { encoding: "utf8" }, bytes: data },
      { params: { encoding: "base64" }, bytes: data },
      { params: {}, bytes: data },
      { params: { line: 3, limit: 20_000 }, bytes: null },
      { params: { tail: 30_000, encoding: "base64" }, bytes: null },
    ];
    for (const [i, read] of reads.entries()) {
      r.send({ jsonrpc: "2.0", id: i, method: "entry/get", params: { run: "r", path, ...read.params } });
      const text = await r.next();
      const encoding = (read.params as { encoding?: "utf8" | "base64" }).encoding ?? "utf8";
      // The same call through the client library (JSON.parse of the same text) gives the body; slices are checked against the whole.
      const body = read.bytes ? read.bytes.toString(encoding) : JSON.parse(text).result.body;
      if (!read.bytes) {
        const whole = data.toString("utf8");
        const slice = Buffer.from(body, encoding).toString("utf8");
        expect(slice.length).toBeGreaterThan(BODY_AS_BYTES);
        expect(whole.includes(slice)).toBe(true);
      }
      expect(text).toBe(stringified(text, body));
      if (encoding === "utf8") expect(text).toContain("\u2028");
    }
    r.ws.close();
  });

  it("a batch holding a large read: its reply is JSON.stringify of the replies, and the read's bytes count against the cap until the batch's reply is flushed", async () => {
    let reads!: ReadCap;
    ts = await startTestServer({
      localRunner: false,
      livenessTimeoutMs: 0,
      limits: { maxReadBytes: 8 * MiB, maxReadBytesInFlight: 16 * MiB },
      extraPlugins: [definePlugin({ name: "test-reads", setup: (app) => void (reads = app.core.reads) })],
    });
    const c = await ts.clientIn("bytes");
    const data = Buffer.from(`${'line \u2028 "q" \\ \t é\n'.repeat(Math.ceil((6 * MiB) / 24))}`.slice(0, 6 * MiB));
    const path = await channel(c, data);
    const body = data.toString("utf8");

    const r = await rawClient(ts, "bytes");
    r.ws.pause();
    const before = r.side.sentBytes;
    // Two large reads (together past a connection's share of the cap) and two small calls.
    r.send([
      { jsonrpc: "2.0", id: 1, method: "entry/get", params: { run: "r", path } },
      { jsonrpc: "2.0", id: 2, method: "entry/get", params: { run: "r", path, tail: 1 } },
      { jsonrpc: "2.0", id: 3, method: "entry/get", params: { run: "r", path, encoding: "base64" } },
      { jsonrpc: "2.0", id: 4, method: "no/such" },
    ]);
    // The batch's reply handed over and not read: the two bodies' bytes are still counted.
    await eventually(() => r.side.sentBytes - before > 12 * MiB, 30_000, "the batch's reply to be sent");
    expect(r.side.flushedBytes).toBeLessThan(r.side.sentBytes);
    expect(reads.heldBy(r.side)).toBeGreaterThanOrEqual(2 * data.length);
    expect(reads.inFlight).toBeGreaterThanOrEqual(2 * data.length);

    r.ws.resume();
    const text = await r.next();
    const replies = JSON.parse(text);
    expect(replies.map((m: any) => m.id)).toEqual([1, 2, 3, 4]);
    expect(replies[0].result.body).toBe(body);
    expect(replies[2].result.body).toBe(data.toString("base64"));
    expect(replies[3].error.code).toBe(-32601);
    expect(text).toBe(JSON.stringify(replies));
    await eventually(() => reads.inFlight === 0, 10_000, "the read's bytes to be let go once flushed");
    r.ws.close();
  });
});
