import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../../src/client/spool-client.js";
import { type App, definePlugin } from "../../../src/plugins/plugin.js";
import { ENTRY } from "../../../src/protocol/status.js";
import { createMemoryTransportPair } from "../../../src/rpc/transport.js";
import { proposeAndAccept } from "../../helpers/proposals.js";
import { eventually, startTestServer, type TestServer } from "../../helpers/server.js";
import { collect } from "../../helpers/stream.js";

describe("watchers", () => {
  let ts: TestServer;
  let streams!: { hub: App["core"]["watchers"] };
  const probe = definePlugin({ name: "probe", dependencies: ["stream"], setup: (app) => void (streams = { hub: app.core.watchers }) });

  beforeAll(async () => {
    ts = await startTestServer({ extraPlugins: [probe], limits: { maxWatcherBufferBytes: 64 * 1024 } });
  });
  afterAll(() => ts.stop());

  it("a watcher that disconnects is removed, and the producer carries on", async () => {
    const c = await ts.clientIn("gone");
    const { path } = await proposeAndAccept(c, c, "gone", "yes", { runner: "self" });
    const w = await ts.clientIn("gone");
    const { subscription } = await w.call("stream/subscribe", { run: "gone", path });
    expect(streams.hub.get(subscription)).toBeDefined();
    w.close();
    await eventually(() => streams.hub.get(subscription) === undefined, 5_000, "subscription removal");
    expect(await c.call("stream", { run: "gone", path, channel: 1, chunk: "y\n", seq: 1 })).toMatchObject({ seq: 1 });
  });

  it("a slow watcher is told it lagged and dropped, never slowing the producer; it resubscribes from its last seq", async () => {
    const c = await ts.clientIn("slow");
    const { path } = await proposeAndAccept(c, c, "slow", "yes", { runner: "self" });
    // A connection whose socket reports a full send buffer, as a stuck client's would.
    const [serverSide, clientSide] = createMemoryTransportPair();
    let backlog = 0;
    ts.server.rpc.accept({ ...serverSide, bufferedAmount: () => backlog });
    const slow = new SpoolClient(clientSide);
    await slow.initialize("slow");
    const lagged = slow.next("stream/lagged");
    const { subscription } = await slow.call("stream/subscribe", { run: "slow", path });
    await c.call("stream", { run: "slow", path, channel: 1, chunk: "1\n", seq: 1 });
    await eventually(async () => (await slow.call("ping", {})) && true);
    backlog = 10 * 1024 * 1024;
    const started = Date.now();
    for (let seq = 2; seq <= 50; seq++) await c.call("stream", { run: "slow", path, channel: 1, chunk: `${seq}\n`, seq });
    expect(Date.now() - started).toBeLessThan(5_000);
    const notice = await lagged;
    expect(notice).toMatchObject({ subscription, run: "slow", path });
    expect(notice.lastSeq["1"]).toBeGreaterThanOrEqual(1);
    expect(streams.hub.get(subscription)).toBeUndefined();

    backlog = 0;
    let sub2: string | undefined;
    const seen = collect(slow, () => sub2, 2);
    sub2 = (await slow.call("stream/subscribe", { run: "slow", path, after: notice.lastSeq["1"] })).subscription;
    seen.recheck();
    await c.call("stream/completed", { run: "slow", path, exit_code: 0 });
    await seen.finished;
    expect(seen.chunks[0]!.seq).toBe(notice.lastSeq["1"]! + 1);
    expect(seen.chunks.at(-1)!.seq).toBe(50);
  });
});

describe("restart", () => {
  it("pending proposals survive; silent 102 channels end 499 interrupted after the grace; a producer that resumes keeps streaming", async () => {
    // The grace is the time the resuming producer has to claim its channels after the restart: long enough for a
    // loaded machine's connect, initialize and first calls (400 ms was outrun on a busy run), short for the silent one.
    const first = await startTestServer({ runnerGraceMs: 2_000 });
    const home = first.home;
    const c = await first.clientIn("restart");
    await c.call("run/create", { alias: "r" });
    const { path: pending } = await c.call("proposal/create", { run: "r", tool: "sh", command: "wait for me" });
    const { path: silent } = await proposeAndAccept(c, c, "r", "silent one", { runner: "self" });
    const { path: resumes, resolved } = await proposeAndAccept(c, c, "r", "resumes", { runner: "self" });
    await c.call("stream", { run: "r", path: silent, channel: 1, chunk: "before\n", seq: 1 });
    await c.call("stream", { run: "r", path: resumes, channel: 1, chunk: "before\n", seq: 1 });
    await first.server.stop();

    const second = await startTestServer({ home, runnerGraceMs: 2_000 });
    try {
      const late = await second.client();
      const proposal = late.next("run/proposal", (p) => p.path === pending);
      await late.initialize("restart");
      expect(await proposal).toMatchObject({ run: "r", command: "wait for me" });
      // Before it claims the producer with its resume token, a new connection is nobody's owner.
      await expect(late.call("stream", { run: "r", path: resumes, channel: 1, chunk: "after\n", seq: 2 })).rejects.toMatchObject({
        data: { code: "NOT_OWNER" },
      });
      expect(await late.call("stream/claim", { run: "r", path: resumes, token: resolved.resumeToken! })).toMatchObject({
        status: ENTRY.streaming,
        channels: [
          { channel: 1, lastSeq: 1 },
          { channel: 2, lastSeq: 0 },
        ],
      });
      // The resuming producer retries seq 1 (acknowledged, not duplicated) and goes on.
      expect(await late.call("stream", { run: "r", path: resumes, channel: 1, chunk: "before\n", seq: 1 })).toMatchObject({ duplicate: true });
      await late.call("stream", { run: "r", path: resumes, channel: 1, chunk: "after\n", seq: 2 });
      await eventually(async () => (await late.call("entry/get", { run: "r", path: "sh://turn_1/silent-one_1" })).status === ENTRY.cancelled, 20_000);
      const silentCh = await late.call("entry/get", { run: "r", path: "sh://turn_1/silent-one_1" });
      expect(silentCh).toMatchObject({ status: ENTRY.cancelled, body: "before\n", attributes: { reason: "interrupted" } });
      const resumed = await late.call("entry/get", { run: "r", path: "sh://turn_1/resumes_1" });
      expect(resumed).toMatchObject({ status: ENTRY.streaming, body: "before\nafter\n" });
      expect((await late.call("entry/get", { run: "r", path: pending })).status).toBe(ENTRY.proposed);
    } finally {
      await second.stop();
    }
  });
});
