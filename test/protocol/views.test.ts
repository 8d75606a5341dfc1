import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY, RUN, STATUS } from "../../src/protocol/status.js";
import { producersOf, producerView, proposalView } from "../../src/protocol/views.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * The typed producer view read from what a real server writes: every field Spool sets comes out named and
 * typed, at each step of a producer's life (proposed, accepted, streaming, ended, rejected, cancelled).
 */
describe("producerView: a producer and its channels from the wire", () => {
  let ts: TestServer;
  let client: SpoolClient;

  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    client = await ts.clientIn("views");
    await client.call("run/create", { alias: "r" });
  });
  afterAll(() => ts?.stop());

  const entries = async () => (await client.call("entry/list", { run: "r" })).entries;
  const producer = async (path: string) => producersOf(await entries()).find((p) => p.path === path)!;

  it("a proposal: its facts, who proposed it, state proposed, no decision yet", async () => {
    const notices: Parameters<typeof proposalView>[0][] = [];
    client.on("run/proposal", (p) => notices.push(p));
    const { path } = await client.call("proposal/create", {
      run: "r",
      tool: "sh",
      command: "printf hi",
      cwd: ".",
      env: { B: "2", A: "1" },
      tty: { cols: 80, rows: 24 },
      timeout_ms: 9000,
    });
    const p = await producer(path);
    expect(p).toMatchObject({
      path,
      status: ENTRY.proposed,
      state: "proposed",
      tool: "sh",
      command: "printf hi",
      cwd: null,
      env: [
        ["B", "2"],
        ["A", "1"],
      ],
      tty: { cols: 80, rows: 24 },
      timeoutMs: 9000,
      background: false,
      slug: "printf-hi",
      decision: null,
      resolvedBy: null,
      outcome: null,
      exitCode: null,
      channels: [],
      extra: {},
    });
    expect(p.sandbox.mode).not.toBe("unknown");
    expect(p.proposedBy).toBeTruthy();
    const notice = notices.find((n) => n.path === path)!;
    const view = proposalView(notice);
    expect(view).toMatchObject({ run: "r", path, loop: null, toolCallId: null, producer: { state: "proposed", command: "printf hi" } });
    expect(view.createdAt).toBeGreaterThan(0);
  });

  it("accepted, streaming, then ended: decision, runner, channels with names and sizes, exit code, duration", async () => {
    const { path } = await client.call("proposal/create", { run: "r", tool: "sh", sandbox: "full", command: "false" });
    const resolved = await client.call("run/resolve", { run: "r", path, decision: "accept", runner: "self" });
    let p = await producer(path);
    expect(p).toMatchObject({ status: ENTRY.done, state: "running", decision: "accept", runner: "self", outcome: null });
    expect(p.resolvedBy).toBeTruthy();
    expect(p.channels.map((c) => [c.channel, c.name, c.status])).toEqual([
      [1, "stdout", ENTRY.streaming],
      [2, "stderr", ENTRY.streaming],
    ]);
    await client.call("stream", { run: "r", path, channel: 1, chunk: "one\ntwo\n", seq: 1 });
    await client.call("stream/completed", { run: "r", path, exit_code: 3, duration: 1200 });
    p = await producer(path);
    expect(p).toMatchObject({ state: "failed", outcome: "completed", endStatus: ENTRY.failed, exitCode: 3, signal: null, durationMs: 1200 });
    expect(p.channels.map((c) => ({ channel: c.channel, path: c.path, bytes: c.bytes, lines: c.lines, status: c.status }))).toEqual([
      { channel: 1, path: resolved.channels[0]!.path, bytes: 8, lines: 2, status: ENTRY.failed },
      { channel: 2, path: resolved.channels[1]!.path, bytes: 0, lines: 0, status: ENTRY.failed },
    ]);
    // The owner's key is the server's business: neither a field nor `extra`.
    expect(p.extra).toEqual({});
    // The log entry alone (entry/get) still tells its channels' sizes, from the summary it keeps once ended.
    const log = await client.call("entry/get", { run: "r", path });
    expect(producerView(log).channels.map((c) => [c.channel, c.bytes, c.lines, c.status])).toEqual([
      [1, 8, 2, ENTRY.failed],
      [2, 0, 0, ENTRY.failed],
    ]);
  });

  it("rejected: who decided and why", async () => {
    const { path } = await client.call("proposal/create", { run: "r", tool: "sh", command: "rm -rf build" });
    await client.call("run/resolve", { run: "r", path, decision: "reject", reason: "not now" });
    expect(await producer(path)).toMatchObject({ status: ENTRY.rejected, state: "rejected", decision: "reject", reason: "not now" });
    expect((await producer(path)).resolvedBy).toBeTruthy();
  });

  it("cancelled: who cancelled it and why, and how long it ran", async () => {
    const { path } = await client.call("proposal/create", { run: "r", tool: "sh", sandbox: "full", command: "sleep 100" });
    await client.call("run/resolve", { run: "r", path, decision: "accept", runner: "self" });
    await client.call("stream/cancel", { run: "r", path, reason: "enough" });
    const p = await producer(path);
    expect(p).toMatchObject({ state: "cancelled", outcome: "cancelled", endStatus: ENTRY.cancelled, reason: "enough", exitCode: null });
    expect(p.cancelledBy).toBeTruthy();
    expect(p.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("aborted by its owner is aborted, not cancelled", async () => {
    const { path } = await client.call("proposal/create", { run: "r", tool: "sh", sandbox: "full", command: "true" });
    await client.call("run/resolve", { run: "r", path, decision: "accept", runner: "self" });
    await client.call("stream/aborted", { run: "r", path, reason: "runner gave up" });
    expect(await producer(path)).toMatchObject({ state: "aborted", outcome: "aborted", reason: "runner gave up", endStatus: ENTRY.cancelled });
  });
});

describe("producerView on attribute bags the server does not write", () => {
  it("a plugin's own attributes are extra; wrong types are left out, never guessed", () => {
    const p = producerView({
      path: "log://turn_1/tail/app",
      status: ENTRY.done,
      turn: 1,
      attributes: { tool: "tail", command: "app.log", follow: true, exit_code: "3", duration: "soon", process: { backend: "local", pid: "x" }, ownerKey: "k" },
    });
    expect(p.extra).toEqual({ follow: true });
    expect(p).toMatchObject({ exitCode: null, durationMs: null, process: { backend: "local", pid: null, container: null, host: null }, state: "accepted" });
  });

  it("channels of other producers are not this one's", () => {
    const log = { path: "log://turn_1/sh/a", status: ENTRY.done, turn: 1, attributes: { tool: "sh", command: "a" } };
    const other = { path: "sh://turn_1/b_1", status: ENTRY.streaming, turn: 1, attributes: { log: "log://turn_1/sh/b", channel: 1, name: "stdout" } };
    expect(producerView(log, [other]).channels).toEqual([]);
  });

  it("STATUS holds both groups", () => {
    expect(STATUS.entry).toBe(ENTRY);
    expect(STATUS.run).toBe(RUN);
  });
});
