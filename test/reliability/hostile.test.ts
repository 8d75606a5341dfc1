// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { z } from "zod";
import type { SpoolClient } from "../../src/client/spool-client.js";
import type { Limits } from "../../src/config/config.js";
import type { Logger } from "../../src/logger.js";
import { definePlugin } from "../../src/plugins/plugin.js";
import { ENTRY } from "../../src/protocol/status.js";
import type { ServerConnection } from "../../src/rpc/connection.js";
import { DEFAULT_CONCURRENCY } from "../../src/rpc/connection.js";
import { DRAINED_BYTES } from "../../src/rpc/connection-context.js";
import { defineMethod } from "../../src/rpc/method.js";
import type { ReadCap } from "../../src/rpc/read-cap.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

const MiB = 1024 * 1024;

/** Methods whose cost and timing the tests control. */
function probePlugin() {
  const state = { busyRuns: 0, held: 0, maxHeld: 0, started: 0, release: () => {} };
  let gate = new Promise<void>((resolve) => {
    state.release = resolve;
  });
  const plugin = definePlugin({
    name: "test-load",
    setup(app) {
      app.method(
        defineMethod({
          name: "test/busy",
          description: "Keeps the event loop busy for `ms` (synchronous work, like a large query)",
          access: "none",
          params: z.strictObject({ ms: z.number() }),
          result: z.object({ n: z.number() }),
          handler: ({ ms }) => {
            const end = performance.now() + ms;
            while (performance.now() < end) {
              // busy
            }
            return { n: ++state.busyRuns };
          },
        }),
      );
      app.method(
        defineMethod({
          name: "test/hold",
          description: "Waits until the test lets it go",
          access: "none",
          params: z.strictObject({ pad: z.string().optional() }),
          result: z.object({ ok: z.literal(true) }),
          handler: async () => {
            state.started++;
            state.maxHeld = Math.max(state.maxHeld, ++state.held);
            await gate;
            state.held--;
            return { ok: true as const };
          },
        }),
      );
    },
  });
  const reset = () => {
    gate = new Promise<void>((resolve) => {
      state.release = resolve;
    });
  };
  return { plugin, state, reset };
}

/** A logger that keeps the warnings, where the server says why it closed a connection. */
function recordingLogger() {
  const warnings: string[] = [];
  const logger: Logger = { debug() {}, info() {}, warn: (m) => void warnings.push(m), error() {} };
  return { logger, warnings };
}

/** A WebSocket without the client library: it can stop reading, and sees replies and notifications raw. */
async function rawClient(ts: TestServer) {
  const ws = new WebSocket(ts.server.url, { headers: { Authorization: `Bearer ${ts.server.token}` }, maxPayload: 256 * MiB });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  ws.on("error", () => undefined);
  const replies = new Map<unknown, any>();
  const waiters = new Map<unknown, (reply: any) => void>();
  let notifications = 0;
  const seen: ((message: any) => void)[] = [];
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  ws.on("message", (data) => {
    const message = JSON.parse(data.toString());
    for (const listener of seen) listener(message);
    if (Array.isArray(message) || message.method === undefined) {
      const id = Array.isArray(message) ? "batch" : message.id;
      replies.set(id, message);
      waiters.get(id)?.(message);
    } else notifications++;
  });
  const client = {
    ws,
    closed,
    replies,
    get notifications() {
      return notifications;
    },
    onMessage: (listener: (message: any) => void) => seen.push(listener),
    /** Resolves with the reply to `id` ("batch" for a batch's). */
    reply: (id: unknown) =>
      replies.has(id) ? Promise.resolve(replies.get(id)) : new Promise<any>((resolve) => waiters.set(id, resolve as (reply: any) => void)),
    send: (message: unknown) => ws.send(JSON.stringify(message)),
    call: (id: unknown, method: string, params: object = {}) => {
      client.send({ jsonrpc: "2.0", id, method, params });
      return client.reply(id);
    },
    initialize: (project: string) => client.call("init", "initialize", { project, root: ts.root, protocolVersion: "1.0" }),
    /** The server's side of this connection. */
    server: (id: string) => [...ts.server.rpc.connections].find((c) => c.id === id) as ServerConnection,
  };
  return client;
}

async function serverSideOf(raw: Awaited<ReturnType<typeof rawClient>>, project: string): Promise<ServerConnection> {
  const { result } = await raw.initialize(project);
  return raw.server(result.connectionId);
}

/** Creates a proposal with a command of `size` bytes: its run/proposal notice carries it twice. */
const bigProposal = (c: SpoolClient, run: string, i: number, size = 60 * 1024) =>
  c.call("proposal/create", { run, tool: "sh", command: `echo ${i} ${"y".repeat(size)}` });

let ts: TestServer | null = null;
afterEach(async () => {
  await ts?.stop();
  ts = null;
});

async function start(limits: Partial<Limits> = {}, extra: { plugin?: Pick<ReturnType<typeof probePlugin>, "plugin">; logger?: Logger } = {}) {
  ts = await startTestServer({
    limits,
    livenessTimeoutMs: 0,
    localRunner: false,
    ...(extra.plugin ? { extraPlugins: [extra.plugin.plugin] } : {}),
    ...(extra.logger ? { logger: extra.logger } : {}),
  });
  return ts;
}

describe("batches", () => {
  it("a batch over limits.maxBatchSize is one -32600 naming the limit, and none of it runs; the connection and the server carry on", async () => {
    const ts = await start({ maxBatchSize: 10 });
    const raw = await rawClient(ts);
    await raw.initialize("batches");
    raw.send(Array.from({ length: 11 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "run/create", params: { alias: `b${i}` } })));
    const refused = await raw.reply(null);
    expect(refused).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32600, data: { code: "INVALID_REQUEST", limit: 10, size: 11 } } });
    expect(refused.error.message).toContain("limits.maxBatchSize");
    expect((await raw.call("l1", "run/list")).result.runs).toEqual([]);

    raw.send(Array.from({ length: 10 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "run/create", params: { alias: `b${i}` } })));
    const accepted = await raw.reply("batch");
    expect(accepted.map((r: any) => r.result.run.alias)).toEqual(Array.from({ length: 10 }, (_, i) => `b${i}`));
    expect((await raw.call("l2", "run/list")).result.runs).toHaveLength(10);
    raw.ws.close();
  });

  it("a batch runs at most DEFAULT_CONCURRENCY of its requests at once, in order, and answers every one", async () => {
    const probe = probePlugin();
    const ts = await start({}, { plugin: probe });
    const raw = await rawClient(ts);
    raw.send(Array.from({ length: 100 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "test/hold", params: {} })));
    await eventually(() => probe.state.started === DEFAULT_CONCURRENCY, 5_000, "the first requests to start");
    // The others wait their turn: a ping from the same connection queues behind them, one from another is answered.
    const other = await rawClient(ts);
    expect((await other.call("p", "ping")).result.pong).toBe(true);
    expect(probe.state.started).toBe(DEFAULT_CONCURRENCY);
    probe.state.release();
    const replies = await raw.reply("batch");
    expect(replies.map((r: any) => r.id)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(replies.every((r: any) => r.result?.ok === true)).toBe(true);
    expect(probe.state.maxHeld).toBe(DEFAULT_CONCURRENCY);
    raw.ws.close();
    other.ws.close();
  });

  it("a maximal batch of expensive requests does not hold the server: another connection's ping is answered while it runs", async () => {
    const probe = probePlugin();
    const ts = await start({}, { plugin: probe });
    const heavy = await rawClient(ts);
    const light = await rawClient(ts);
    await light.call("warm", "ping");
    // 100 × 20 ms of synchronous work: two seconds if the batch held the event loop.
    heavy.send(Array.from({ length: 100 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "test/busy", params: { ms: 20 } })));
    await eventually(() => probe.state.busyRuns >= 1, 5_000, "the batch to start");
    await light.call("p", "ping");
    const doneWhenPinged = probe.state.busyRuns;
    expect(heavy.replies.has("batch")).toBe(false);
    expect(doneWhenPinged).toBeLessThan(20);
    const replies = await heavy.reply("batch");
    expect(replies).toHaveLength(100);
    expect(probe.state.busyRuns).toBe(100);
    heavy.ws.close();
    light.ws.close();
  });

  it("a batch's reply stays within limits.maxOutboundBytes: the calls past it get PAYLOAD_TOO_LARGE, single calls still work", async () => {
    const ts = await start({ maxOutboundBytes: MiB });
    const c = await ts.clientIn("budget");
    const { path, stdout } = await proposeAndAccept(c, c, "r", "big", { runner: "self" });
    const channel = stdout;
    await c.call("stream", { run: "r", path, channel: 1, chunk: `${"z".repeat(299)}\n`.repeat(1000), seq: 1 });
    const raw = await rawClient(ts);
    await raw.initialize("budget");
    raw.send(Array.from({ length: 10 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "entry/get", params: { run: "r", path: channel } })));
    const replies = await raw.reply("batch");
    const ok = replies.filter((r: any) => r.result);
    const refused = replies.filter((r: any) => r.error);
    expect(ok.length).toBe(3);
    expect(ok.every((r: any) => r.result.body.length === 300_000)).toBe(true);
    expect(refused.map((r: any) => r.error.data)).toEqual(Array.from({ length: 7 }, () => ({ code: "PAYLOAD_TOO_LARGE", limit: MiB })));
    expect(JSON.stringify(replies).length).toBeLessThan(MiB);
    expect((await raw.call("single", "entry/get", { run: "r", path: channel })).result.bytes).toBe(300_000);
    raw.ws.close();
  });
});

describe("one connection's output", () => {
  it("a connection that stops reading is closed with 1008 once what it left unread passes limits.maxOutboundBytes; the others lose nothing", async () => {
    const { logger, warnings } = recordingLogger();
    const ts = await start({ maxOutboundBytes: MiB }, { logger });
    const c = await ts.clientIn("unread");
    await c.call("run/create", { alias: "r" });
    let seen = 0;
    c.on("run/proposal", () => void seen++);
    const raw = await rawClient(ts);
    const stuck = await serverSideOf(raw, "unread");
    raw.ws.pause();
    let created = 0;
    // The socket's own buffers take a few MB first; then the server's count passes the budget.
    while (!stuck.closed && created < 800) await bigProposal(c, "r", created++);
    expect(stuck.closed).toBe(true);
    expect(warnings.find((w) => w.includes(stuck.id))).toMatch(/with 1008: .*limits\.maxOutboundBytes 1048576/);
    expect(ts.server.rpc.connections.has(stuck)).toBe(false);
    // The server holds nothing more for it, still serves, and the client that reads got every proposal.
    await eventually(() => seen === created, 10_000, "every proposal at the reading client");
    expect(ts.server.rpc.memory!.total).toBeLessThan(256 * 1024);
    expect(await c.call("ping", {})).toMatchObject({ pong: true });
    const pending = await c.call("entry/list", { run: "r", status: ENTRY.proposed });
    expect(pending.entries).toHaveLength(created);
  });

  it("requests of a connection that does not collect its replies stop running: it holds one reply and what is unread, never the rest", async () => {
    const ts = await start();
    const c = await ts.clientIn("reads");
    const { path, stdout } = await proposeAndAccept(c, c, "r", "big", { runner: "self" });
    const channel = stdout;
    const line = `${"q".repeat(1023)}\n`;
    for (let seq = 1; seq <= 2; seq++) await c.call("stream", { run: "r", path, channel: 1, chunk: line.repeat(1024), seq });
    const raw = await rawClient(ts);
    const reader = await serverSideOf(raw, "reads");
    raw.ws.pause();
    const rssBefore = process.memoryUsage().rss;
    // 200 reads of 2 MiB: 400 MiB of replies if they all ran.
    for (let i = 0; i < 200; i++) raw.send({ jsonrpc: "2.0", id: i, method: "entry/get", params: { run: "r", path: channel } });
    await eventually(() => reader.waitingForPeer && reader.requests.size > 100, 20_000, "the reads to wait for the client");
    expect(reader.held).toBeLessThan(DRAINED_BYTES + 2 * 2.2 * MiB + 64 * 1024);
    expect(ts.server.rpc.memory!.total).toBeLessThanOrEqual(reader.held + 64 * 1024);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * MiB);
    // Others are served meanwhile.
    expect((await c.call("entry/get", { run: "r", path: channel, tail: 1 })).body).toBe(line);
    raw.ws.terminate();
    await eventually(() => !ts.server.rpc.connections.has(reader), 5_000, "the connection to go");
    expect(ts.server.rpc.memory!.total).toBe(0);
  });

  it("a client pipelining more than limits.maxRequestsInFlight is not read further until its requests are answered; none is refused or lost", async () => {
    const probe = probePlugin();
    const ts = await start({ maxRequestsInFlight: 8 }, { plugin: probe });
    const raw = await rawClient(ts);
    const { result } = await raw.call("init", "initialize", { project: "pipe", root: ts.root, protocolVersion: "1.0" });
    const conn = raw.server(result.connectionId);
    // 200 requests of 64 KiB: more than the socket buffers hold, so the client's own send buffer fills while the server does not read.
    const pad = "p".repeat(64 * 1024);
    for (let i = 0; i < 200; i++) raw.send({ jsonrpc: "2.0", id: i, method: "test/hold", params: { pad } });
    await eventually(() => raw.ws.bufferedAmount > 0 && probe.state.started >= 8, 10_000, "the server to stop reading");
    expect(conn.requests.size).toBeLessThanOrEqual(8 + 2);
    probe.state.release();
    await eventually(() => raw.replies.has(199), 20_000, "every reply");
    for (let i = 0; i < 200; i++) expect(raw.replies.get(i)).toEqual({ jsonrpc: "2.0", id: i, result: { ok: true } });
    expect(probe.state.started).toBe(200);
    raw.ws.close();
  });

  it("initialize re-sends pending proposals a page at a time: a joiner that does not read holds about a page, one that reads gets every one", async () => {
    const ts = await start();
    const c = await ts.clientIn("joiners");
    await c.call("run/create", { alias: "r" });
    const COUNT = 300; // about 36 MB of notices
    for (let i = 0; i < COUNT; i += 20) await Promise.all(Array.from({ length: 20 }, (_, k) => bigProposal(c, "r", i + k)));
    c.close();

    const paused = await rawClient(ts);
    paused.ws.pause();
    paused.send({ jsonrpc: "2.0", id: "init", method: "initialize", params: { project: "joiners", root: ts.root, protocolVersion: "1.0" } });
    await eventually(() => [...ts.server.rpc.connections].some((x) => x.project && x.waitingForPeer), 10_000, "the re-send to wait for the joiner");
    const joiner = [...ts.server.rpc.connections].find((x) => x.project && x.waitingForPeer)!;
    expect(joiner.held).toBeLessThan(DRAINED_BYTES + 8 * 130 * 1024 + 64 * 1024);

    // Once it reads, the rest follows: nothing was dropped.
    const paths = new Set<string>();
    const all = new Promise<void>((resolve) =>
      paused.onMessage((m) => {
        if (m.method === "run/proposal") paths.add(m.params.path);
        if (paths.size === COUNT) resolve();
      }),
    );
    paused.ws.resume();
    await all;
    expect(paths.size).toBe(COUNT);
    paused.ws.close();
  }, 180_000);
});

describe("the server's budget", () => {
  it("when clients together hold more than limits.maxClientMemoryBytes, the one holding the most is closed with 1013; the others carry on", async () => {
    const { logger, warnings } = recordingLogger();
    const ts = await start({ maxClientMemoryBytes: 3 * MiB }, { logger });
    const c = await ts.clientIn("crowd");
    await c.call("run/create", { alias: "r" });
    let seen = 0;
    c.on("run/proposal", () => void seen++);
    const paused = await Promise.all(Array.from({ length: 3 }, () => rawClient(ts)));
    const sides: ServerConnection[] = [];
    for (const p of paused) {
      sides.push(await serverSideOf(p, "crowd"));
      p.ws.pause();
    }
    let created = 0;
    while (!sides.some((s) => s.closed) && created < 800) await bigProposal(c, "r", created++);
    const evicted = sides.find((s) => s.closed)!;
    expect(evicted).toBeDefined();
    expect(warnings.find((w) => w.includes(evicted.id))).toMatch(/with 1013: server memory budget: .*limits\.maxClientMemoryBytes 3145728/);
    expect(ts.server.rpc.memory!.total).toBeLessThanOrEqual(3 * MiB + 256 * 1024);
    // The reading client is never the one closed, and got everything.
    await eventually(() => seen === created, 10_000, "every proposal at the reading client");
    expect(await c.call("ping", {})).toMatchObject({ pong: true });
    for (const p of paused) p.ws.terminate();
  });

  it("watchers that stop reading cost nothing while they sit: their replays wait on the connection's writes, no timer polls, each holds about a page", async () => {
    let reads!: ReadCap;
    const ts = await start({}, { plugin: { plugin: definePlugin({ name: "test-reads", setup: (app) => void (reads = app.core.reads) }) } });
    const c = await ts.clientIn("watch");
    const { path } = await proposeAndAccept(c, c, "r", "big", { runner: "self" });
    const chunk = `${"w".repeat(1023)}\n`.repeat(1024);
    for (let seq = 1; seq <= 8; seq++) await c.call("stream", { run: "r", path, channel: 1, chunk, seq });
    await c.call("stream/completed", { run: "r", path, exit_code: 0 });

    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timers();
    const watchers = await Promise.all(Array.from({ length: 20 }, () => rawClient(ts)));
    const sides: ServerConnection[] = [];
    for (const w of watchers) {
      sides.push(await serverSideOf(w, "watch"));
      w.ws.pause();
      w.send({ jsonrpc: "2.0", id: "s", method: "stream/subscribe", params: { run: "r", path } });
    }
    // Each replay waits for its watcher to read, or for room under the server's cap on reads in flight (held by the others).
    await eventually(() => sides.every((s) => s.waitingForPeer || reads.waitingFor(s) > 0), 20_000, "every replay to wait for its watcher or the cap");
    expect(timers() - before).toBeLessThanOrEqual(2);
    for (const s of sides) expect(s.held).toBeLessThan(DRAINED_BYTES + 2 * 1.5 * MiB);

    expect(reads.peak).toBeLessThanOrEqual(reads.limit);

    // Watchers that read again get every chunk, once, in order, and the end (those the cap held back too).
    const runs = watchers.map((w) => {
      const seqs: number[] = [];
      const ended = new Promise<any>((resolve) =>
        w.onMessage((m) => {
          if (m.method === "stream/data") seqs.push(m.params.seq);
          if (m.method === "stream/end") resolve(m.params);
        }),
      );
      return { seqs, ended };
    });
    for (const w of watchers) w.ws.resume();
    for (const run of runs) {
      expect(await run.ended).toMatchObject({ lastSeq: 8, status: ENTRY.done });
      expect(run.seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    }
    await eventually(() => reads.inFlight === 0, 5_000, "every replay page to be let go");
    for (const x of watchers) x.ws.terminate();
    await eventually(() => ts.server.rpc.memory!.total === 0, 5_000, "the server to let go of the watchers");
  }, 180_000);
});
