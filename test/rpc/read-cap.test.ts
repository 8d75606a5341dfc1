// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { type Limits, loadConfig } from "../../src/config/config.js";
import { definePlugin } from "../../src/plugins/plugin.js";
import { ENTRY } from "../../src/protocol/status.js";
import type { ServerConnection } from "../../src/rpc/connection.js";
import type { ReadCap } from "../../src/rpc/read-cap.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

const MiB = 1024 * 1024;

let ts: TestServer | null = null;
afterEach(async () => {
  await ts?.stop();
  ts = null;
});

/** A server with `limits`, liveness off (nothing closes a peer that does not read), and its read cap at hand. */
async function start(limits: Partial<Limits>) {
  let reads!: ReadCap;
  ts = await startTestServer({
    limits,
    livenessTimeoutMs: 0,
    localRunner: false,
    extraPlugins: [definePlugin({ name: "test-reads", setup: (app) => void (reads = app.core.reads) })],
  });
  return { ts, reads };
}

/** A WebSocket without the client library: it can stop reading (pause) and read again (resume). */
async function rawClient(server: TestServer, project: string) {
  const ws = new WebSocket(server.server.url, { headers: { Authorization: `Bearer ${server.server.token}` }, maxPayload: 256 * MiB });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  ws.on("error", () => undefined);
  const replies = new Map<unknown, any>();
  const notifications: any[] = [];
  const waiters = new Map<unknown, (reply: any) => void>();
  ws.on("message", (data) => {
    const message = JSON.parse(data.toString());
    if (message.method === undefined) {
      replies.set(message.id, message);
      waiters.get(message.id)?.(message);
    } else notifications.push(message);
  });
  const reply = (id: unknown) => (replies.has(id) ? Promise.resolve(replies.get(id)) : new Promise<any>((resolve) => waiters.set(id, resolve)));
  const send = (id: unknown, method: string, params: object) => ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
  send("init", "initialize", { project, root: server.root, protocolVersion: "1.0" });
  const { result } = await reply("init");
  const side = [...server.server.rpc.connections].find((c) => c.id === result.connectionId) as ServerConnection;
  return { ws, replies, notifications, reply, send, side };
}

/** A finished channel of `chunks` chunks of `size` bytes, each line naming its chunk; returns its path and its expected body. */
async function channel(c: SpoolClient, chunks: number, size: number) {
  const { path, stdout } = await proposeAndAccept(c, c, "r", "big", { runner: "self" });
  const parts: string[] = [];
  for (let seq = 1; seq <= chunks; seq++) {
    const line = `chunk ${String(seq).padStart(6, "0")} `;
    const part = `${line}${"x".repeat(size - line.length - 1)}\n`;
    parts.push(part);
    await c.call("stream", { run: "r", path, channel: 1, chunk: part, seq });
  }
  await c.call("stream/completed", { run: "r", path, exit_code: 0 });
  return { path, stdout, body: parts.join("") };
}

describe("the server-wide cap on reads in flight (limits.maxReadBytesInFlight)", () => {
  it("non-reading connections pipelining large entry/get hold at most the cap; a reading client gets its whole reply meanwhile, and they get theirs once they read", async () => {
    // Three 8 MiB reads fit; one connection holds one at a time (its share is a quarter of the cap).
    const { ts, reads } = await start({ maxReadBytes: 8 * MiB, maxReadBytesInFlight: 24 * MiB });
    const c = await ts.clientIn("reads");
    const { stdout, body } = await channel(c, 8, MiB);

    const sitters = await Promise.all([rawClient(ts, "reads"), rawClient(ts, "reads")]);
    for (const s of sitters) {
      s.ws.pause();
      for (let i = 0; i < 4; i++) s.send(i, "entry/get", { run: "r", path: stdout });
    }
    // Both have a read admitted whose reply their peer does not take.
    await eventually(() => sitters.every((s) => reads.heldBy(s.side) > 0), 20_000, "each sitter to hold a read");

    const got = await c.call("entry/get", { run: "r", path: stdout });
    expect(got.body.length).toBe(body.length);
    expect(got.body === body).toBe(true);
    expect(sitters.every((s) => s.ws.readyState === WebSocket.OPEN && !s.side.closed)).toBe(true);
    expect(reads.peak).toBeLessThanOrEqual(reads.limit);
    for (const s of sitters) expect(reads.heldBy(s.side)).toBeLessThanOrEqual(8 * MiB);

    // Reading again, each gets its four replies, whole and right.
    for (const s of sitters) s.ws.resume();
    for (const s of sitters) {
      for (let i = 0; i < 4; i++) {
        const reply = await s.reply(i);
        expect(reply.error).toBeUndefined();
        expect(reply.result.body === body).toBe(true);
      }
    }
    expect(reads.peak).toBeLessThanOrEqual(reads.limit);
    await eventually(() => reads.inFlight === 0, 5_000, "every read to be let go");
  }, 150_000);

  it("a read past the cap waits its turn instead of being read: the bytes in flight never pass the cap, and every waiting read is served once there is room", async () => {
    const { ts, reads } = await start({ maxReadBytes: 8 * MiB, maxReadBytesInFlight: 16 * MiB });
    const c = await ts.clientIn("reads");
    const { stdout, body } = await channel(c, 8, MiB);

    const sitters = await Promise.all(Array.from({ length: 4 }, () => rawClient(ts, "reads")));
    for (const s of sitters) {
      s.ws.pause();
      for (let i = 0; i < 2; i++) s.send(i, "entry/get", { run: "r", path: stdout });
    }
    await eventually(() => reads.waiting > 0 && reads.inFlight === reads.limit, 20_000, "reads to wait for the cap");
    expect(reads.peak).toBeLessThanOrEqual(reads.limit);

    for (const s of sitters) s.ws.resume();
    for (const s of sitters) {
      for (let i = 0; i < 2; i++) expect((await s.reply(i)).result.body === body).toBe(true);
    }
    expect(reads.peak).toBeLessThanOrEqual(reads.limit);
    await eventually(() => reads.inFlight === 0 && reads.waiting === 0, 5_000, "every read to be let go");
  });

  it("paused watchers hold at most the cap while they sit; reading again, each gets every chunk once, in order, and the end", async () => {
    const { ts, reads } = await start({ maxReadBytes: MiB, maxChunkBytes: 256 * 1024, maxReadBytesInFlight: 2 * MiB });
    const c = await ts.clientIn("watch");
    const { path } = await channel(c, 64, 64 * 1024);

    const watchers = await Promise.all(Array.from({ length: 4 }, () => rawClient(ts, "watch")));
    for (const w of watchers) {
      w.ws.pause();
      for (let i = 0; i < 3; i++) w.send(`s${i}`, "stream/subscribe", { run: "r", path, channel: 1 });
    }
    // Each replay waits: for its watcher to read what it was sent, or for room under the cap.
    await eventually(() => watchers.every((w) => w.side.waitingForPeer || reads.waitingFor(w.side) > 0), 20_000, "every replay to wait");
    expect(reads.peak).toBeLessThanOrEqual(reads.limit);

    for (const w of watchers) w.ws.resume();
    for (const w of watchers) {
      const subs = await Promise.all([0, 1, 2].map(async (i) => (await w.reply(`s${i}`)).result.subscription as string));
      await eventually(() => w.notifications.filter((n) => n.method === "stream/end").length === 3, 20_000, "every subscription to end");
      for (const sub of subs) {
        const mine = w.notifications.filter((n) => n.params.subscription === sub);
        expect(mine.filter((n) => n.method === "stream/data").map((n) => n.params.seq)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
        expect(mine.at(-1)).toMatchObject({ method: "stream/end", params: { lastSeq: 64, status: ENTRY.done } });
        expect(mine.some((n) => n.method === "stream/lagged")).toBe(false);
      }
    }
    expect(reads.peak).toBeLessThanOrEqual(reads.limit);
    await eventually(() => reads.inFlight === 0, 5_000, "every page to be let go");
  });

  it("while reads wait, a connection holding bytes its peer has not read for a quarter of livenessTimeoutMs is closed with 1013, and the waiting read goes", async () => {
    const warnings: string[] = [];
    let reads!: ReadCap;
    ts = await startTestServer({
      limits: { maxReadBytes: 8 * MiB, maxReadBytesInFlight: 16 * MiB },
      // Liveness alone would close the sitters after 12 s; the cap closes them after about 3 s of holding bytes nobody
      // reads (at most 4.5 s: it looks every half of that), and the waiting read is served well before the 12 s. (With
      // 4 s, a busy machine's fill and read outlasted it: liveness closed the second sitter too, CI on e91e4b1d.)
      livenessTimeoutMs: 12_000,
      localRunner: false,
      logger: { debug() {}, info() {}, warn: (m) => void warnings.push(m), error() {} },
      extraPlugins: [definePlugin({ name: "test-reads", setup: (app) => void (reads = app.core.reads) })],
    });
    const c = await ts.clientIn("reads");
    const { stdout, body } = await channel(c, 8, MiB);
    const sitters = await Promise.all([rawClient(ts, "reads"), rawClient(ts, "reads")]);
    for (const s of sitters) {
      s.ws.pause();
      for (let i = 0; i < 4; i++) s.send(i, "entry/get", { run: "r", path: stdout });
    }
    await eventually(() => reads.inFlight === reads.limit, 20_000, "the sitters to hold the whole cap");

    const got = await c.call("entry/get", { run: "r", path: stdout });
    // What had happened when the read was served (liveness may close the other sitter later, as it should).
    const closed = sitters.filter((s) => s.side.closed || s.side.closing).length;
    const seen = [...warnings];
    expect(got.body === body).toBe(true);
    // Only as many as the waiting read needs room from are closed: here one of the two, by the cap, none by liveness.
    expect(
      seen.filter((w) => /with 1013: read cap: it holds \d+ bytes of replies its peer has not read .*limits\.maxReadBytesInFlight 16777216/.test(w)),
    ).toHaveLength(1);
    expect(seen.filter((w) => /taken for dead/.test(w))).toEqual([]);
    expect(closed).toBe(1);
    expect(reads.peak).toBeLessThanOrEqual(reads.limit);
  });

  it("a tail or slice asks the cap for a few times its share of the entry's bytes, and still returns lines longer than that whole", async () => {
    const { ts, reads } = await start({});
    const c = await ts.clientIn("lines");
    const { path, stdout } = await proposeAndAccept(c, c, "r", "lines", { runner: "self" });
    const short = Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join("");
    const long = `${"L".repeat(3 * MiB)}\n`;
    await c.call("stream", { run: "r", path, channel: 1, chunk: short, seq: 1 });
    await c.call("stream", { run: "r", path, channel: 1, chunk: long.slice(0, MiB), seq: 2 });
    await c.call("stream", { run: "r", path, channel: 1, chunk: long.slice(MiB, 2 * MiB), seq: 3 });
    await c.call("stream", { run: "r", path, channel: 1, chunk: long.slice(2 * MiB, 3 * MiB), seq: 4 });
    await c.call("stream", { run: "r", path, channel: 1, chunk: "\nlast\n", seq: 5 });

    // While the channel is still streaming, a tail of two short lines asks for little.
    reads.resetPeak();
    const small = await c.call("entry/get", { run: "r", path: stdout, line: 10, limit: 2 });
    expect(small).toMatchObject({ body: "line 9\nline 10\n", truncated: false });
    expect(reads.peak).toBeLessThan(MiB);
    // A tail whose lines are far longer than the entry's average is read again with room for maxReadBytes, whole.
    const tail = await c.call("entry/get", { run: "r", path: stdout, tail: 2 });
    expect(tail.body === `${long}last\n`).toBe(true);
    expect(tail.truncated).toBe(false);
    expect(reads.peak).toBeLessThanOrEqual(reads.limit);
    await eventually(() => reads.inFlight === 0, 5_000, "every read to be let go");
  });

  it("a cap smaller than one read the server allows, or not a positive integer, is refused at start with the key named", () => {
    const home = mkdtempSync(join(tmpdir(), "spool-read-cap-"));
    try {
      const config = (limits: object) => {
        writeFileSync(join(home, "config.json"), JSON.stringify({ limits }));
        return () => loadConfig({ home }, {});
      };
      expect(config({ maxReadBytesInFlight: 1024 })).toThrow(
        `${join(home, "config.json")}: "limits.maxReadBytesInFlight" must be at least limits.maxReadBytes (8388608): a read of that size could never go, got 1024`,
      );
      expect(config({ maxReadBytes: 1024, maxChunkBytes: 4096, maxReadBytesInFlight: 2048 })).toThrow(/must be at least limits\.maxChunkBytes \(4096\)/);
      expect(config({ maxReadBytesInFlight: 0 })).toThrow(`${join(home, "config.json")}: "limits.maxReadBytesInFlight" must be a positive integer, got 0`);
      expect(config({ maxReadBytesInFlight: "lots" })).toThrow(/"limits.maxReadBytesInFlight" must be a positive integer, got "lots"/);
      expect(config({ maxReadBytesInFlight: 32 * MiB })().limits.maxReadBytesInFlight).toBe(32 * MiB);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
