import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY } from "../../../src/protocol/status.js";
import { proposeAndAccept } from "../../helpers/proposals.js";
import { startTestServer, type TestServer } from "../../helpers/server.js";
import { collect } from "../../helpers/stream.js";

describe("a producer's lifecycle across four WebSocket clients", () => {
  let ts: TestServer;
  beforeAll(async () => {
    // No embedded runner: every accept here names "self", and NO_RUNNER is one of the cases.
    ts = await startTestServer({ localRunner: false });
  });
  afterAll(() => ts.stop());

  it("propose from one, accept from another, stream from a third, watch from a fourth", async () => {
    const proposer = await ts.clientIn("life");
    const acceptor = await ts.clientIn("life");
    const producer = await ts.clientIn("life");
    const watcher = await ts.clientIn("life");
    const outsider = await ts.clientIn("elsewhere");
    const outsiderSaw: string[] = [];
    outsider.on("run/proposal", (p) => outsiderSaw.push(p.path));

    await proposer.call("run/create", { alias: "r1" });
    const proposals = Promise.all([acceptor, producer, watcher].map((c) => c.next("run/proposal", (p) => p.run === "r1")));
    const { path, turn } = await proposer.call("proposal/create", { run: "r1", tool: "sh", sandbox: "full", command: "npm test -- --watch=false" });
    expect(path).toBe("log://turn_1/sh/npm-test-watch-false");
    expect(turn).toBe(1);
    for (const notice of await proposals) {
      expect(notice).toMatchObject({ run: "r1", path, tool: "sh", command: "npm test -- --watch=false", turn: 1 });
    }
    const logBefore = await watcher.call("entry/get", { run: "r1", path });
    expect(logBefore.status).toBe(ENTRY.proposed);
    expect(logBefore.attributes.command).toBe("npm test -- --watch=false");

    const resolved = await acceptor.request("run/resolve", { run: "r1", path, decision: "accept", runner: "self" });
    expect(resolved).toEqual({
      resumeToken: expect.any(String),
      path,
      status: ENTRY.done,
      runner: "self",
      channels: [
        { channel: 1, name: "stdout", path: "sh://turn_1/npm-test-watch-false_1", status: ENTRY.streaming },
        { channel: 2, name: "stderr", path: "sh://turn_1/npm-test-watch-false_2", status: ENTRY.streaming },
      ],
    });
    const ch1 = await watcher.request("entry/get", { run: "r1", path: resolved.channels[0].path });
    expect(ch1).toMatchObject({ status: ENTRY.streaming, attributes: { command: "npm test -- --watch=false", channel: 1 } });

    // The acceptor owns the producer; it hands the resume token to the process that streams, which claims it.
    await expect(producer.call("stream", { run: "r1", path, channel: 1, chunk: "forged\n", seq: 1 })).rejects.toMatchObject({ data: { code: "NOT_OWNER" } });
    expect(await producer.request("stream/claim", { run: "r1", path, token: resolved.resumeToken })).toMatchObject({ status: ENTRY.streaming });

    // The producer streams a first chunk before anyone watches: the watcher gets it by replay.
    expect(await producer.call("stream", { run: "r1", path, channel: 1, chunk: "line 1\n", seq: 1 })).toEqual({
      channel: 1,
      seq: 1,
      bytes: 7,
      duplicate: false,
    });
    let sub: string | undefined;
    const seen = collect(watcher, () => sub, 2);
    const subscribed = await watcher.call("stream/subscribe", { run: "r1", path });
    sub = subscribed.subscription;
    seen.recheck();
    expect(subscribed.channels.map((c: { lastSeq: number }) => c.lastSeq)).toEqual([1, 0]);
    await producer.call("stream", { run: "r1", path, channel: 2, chunk: "warning\n", seq: 1 });
    await producer.call("stream", { run: "r1", path, channel: 1, chunk: "line 2\n", seq: 2 });
    const done = await producer.call("stream/completed", { run: "r1", path, exit_code: 0, duration: 1234 });
    expect(done).toMatchObject({ path, status: ENTRY.done, changed: true });
    await seen.finished;

    expect(seen.bytes(1).toString()).toBe("line 1\nline 2\n");
    expect(seen.bytes(2).toString()).toBe("warning\n");
    expect(seen.ends.map((e) => [e.channel, e.status, e.exit_code])).toEqual([
      [1, 200, 0],
      [2, 200, 0],
    ]);
    const log = await proposer.call("entry/get", { run: "r1", path });
    expect(log.status).toBe(ENTRY.done);
    expect(log.body).toBe("$ npm test -- --watch=false → exit 0 in 1234 ms; stdout 14 bytes/2 lines, stderr 8 bytes/1 line");
    expect(log.attributes).toMatchObject({ exit_code: 0, duration: 1234, outcome: "completed", status: ENTRY.done });
    const stdout = await proposer.call("entry/get", { run: "r1", path: "sh://turn_1/npm-test-watch-false_1" });
    expect(stdout).toMatchObject({ status: ENTRY.done, body: "line 1\nline 2\n", bytes: 14, lines: 2, attributes: { exit_code: 0 } });
    expect(outsiderSaw).toEqual([]);
  });

  it("a rejected proposal is 403 with the reason, and resolving it again is CONFLICT", async () => {
    const a = await ts.clientIn("life");
    const b = await ts.clientIn("life");
    await a.call("run/create", { alias: "r2" });
    const { path } = await a.call("proposal/create", { run: "r2", tool: "env", command: "git status" });
    const rejected = await b.call("run/resolve", { run: "r2", path, decision: "reject", reason: "not now" });
    expect(rejected).toEqual({ path, status: ENTRY.rejected, runner: null, channels: [] });
    const log = await a.call("entry/get", { run: "r2", path });
    expect(log).toMatchObject({ status: ENTRY.rejected, attributes: { reason: "not now", decision: "reject" } });
    await expect(a.call("run/resolve", { run: "r2", path, decision: "accept", runner: "self" })).rejects.toMatchObject({
      data: { code: "CONFLICT", status: ENTRY.rejected },
    });
    await expect(a.call("stream", { run: "r2", path, channel: 1, chunk: "x" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
  });

  it("accept with no runner attached and the embedded one off is NO_RUNNER and leaves the proposal pending", async () => {
    const a = await ts.clientIn("life");
    await a.call("run/create", { alias: "r3" });
    const { path } = await a.call("proposal/create", { run: "r3", tool: "sh", command: "make" });
    await expect(a.call("run/resolve", { run: "r3", path, decision: "accept" })).rejects.toMatchObject({ data: { code: "NO_RUNNER" } });
    await expect(a.call("run/resolve", { run: "r3", path, decision: "accept", runner: "gpu-box" })).rejects.toMatchObject({
      data: { code: "NO_RUNNER", runner: "gpu-box" },
    });
    expect((await a.call("entry/get", { run: "r3", path })).status).toBe(ENTRY.proposed);
  });

  it("slugs are unique within a turn and channel paths never overlap", async () => {
    const a = await ts.clientIn("life");
    await a.call("run/create", { alias: "r4" });
    const first = await a.call("proposal/create", { run: "r4", tool: "sh", command: "ls -la" });
    const second = await a.call("proposal/create", { run: "r4", tool: "sh", command: "ls -la" });
    const third = await a.call("proposal/create", { run: "r4", tool: "sh", command: "ls_la" });
    expect([first.path, second.path, third.path]).toEqual(["log://turn_1/sh/ls-la", "log://turn_1/sh/ls-la-2", "log://turn_1/sh/ls-la-3"]);
    // Neighbours of the prefix in the index's order (SQLite reads only [prefix, prefix + ".")) are not its suffixes.
    const lab = await a.call("proposal/create", { run: "r4", tool: "sh", command: "ls -lab" });
    const l = await a.call("proposal/create", { run: "r4", tool: "sh", command: "ls -l" });
    const fourth = await a.call("proposal/create", { run: "r4", tool: "sh", command: "ls  -la" });
    expect([lab.path, l.path, fourth.path]).toEqual(["log://turn_1/sh/ls-lab", "log://turn_1/sh/ls-l", "log://turn_1/sh/ls-la-4"]);
    const more = [];
    for (let i = 0; i < 8; i++) more.push((await a.call("proposal/create", { run: "r4", tool: "sh", command: "ls -la" })).path);
    expect(more.at(-1)).toBe("log://turn_1/sh/ls-la-12");
  });

  it("pending proposals are re-sent to a connection when it initializes", async () => {
    const a = await ts.clientIn("resend");
    await a.call("run/create", { alias: "r5" });
    const { path } = await a.call("proposal/create", { run: "r5", tool: "sh", command: "deploy" });
    const late = await ts.client();
    const got = late.next("run/proposal", (p) => p.path === path);
    await late.initialize("resend");
    expect(await got).toMatchObject({ run: "r5", path, command: "deploy" });
  });

  it("cancel from a client that neither created nor streams the producer: 499 at once, everyone told", async () => {
    const proposer = await ts.clientIn("cancel");
    const producer = await ts.clientIn("cancel");
    const bystander = await ts.clientIn("cancel");
    const { path } = await proposeAndAccept(proposer, producer, "c1", "sleep 100", { runner: "self" });
    await producer.call("stream", { run: "c1", path, channel: 1, chunk: "tick\n", seq: 1 });
    const told = Promise.all([proposer, producer].map((c) => c.next("stream/cancelled", (p) => p.path === path)));
    const result = await bystander.call("stream/cancel", { run: "c1", path, reason: "taking too long" });
    expect(result).toMatchObject({ status: ENTRY.cancelled, changed: true });
    for (const notice of await told) expect(notice).toEqual({ run: "c1", path, reason: "taking too long" });
    const ch = await bystander.call("entry/get", { run: "c1", path: "sh://turn_1/sleep-100_1" });
    expect(ch).toMatchObject({ status: ENTRY.cancelled, body: "tick\n", attributes: { reason: "taking too long", outcome: "cancelled" } });
    // Finishing again changes nothing and reports what is there.
    const again = await producer.call("stream/completed", { run: "c1", path, exit_code: 0 });
    expect(again).toMatchObject({ status: ENTRY.cancelled, changed: false });
    await expect(producer.call("stream", { run: "c1", path, channel: 1, chunk: "late", seq: 2 })).rejects.toMatchObject({
      data: { code: "STREAM_CLOSED", status: ENTRY.cancelled },
    });
  });

  it("a non-zero exit or a signal makes the channels 500 and keeps the code in attributes", async () => {
    const a = await ts.clientIn("exit");
    for (const [run, finish, expected] of [
      ["e1", { exit_code: 3 }, { exit_code: 3, signal: null }],
      ["e2", { signal: "SIGKILL" }, { exit_code: null, signal: "SIGKILL" }],
    ] as const) {
      const { path } = await proposeAndAccept(a, a, run, "false", { runner: "self" });
      const r = await a.call("stream/completed", { run, path, ...finish });
      expect(r.status).toBe(ENTRY.failed);
      const ch = await a.call("entry/get", { run, path: "sh://turn_1/false_2" });
      expect(ch.status).toBe(ENTRY.failed);
      expect(ch.attributes).toMatchObject(expected);
    }
  });

  it("stream/aborted ends channels 499 with the reason", async () => {
    const a = await ts.clientIn("abort");
    const { path } = await proposeAndAccept(a, a, "a1", "sleep 5", { runner: "self" });
    const r = await a.call("stream/aborted", { run: "a1", path, reason: "timed out", duration: 5000 });
    expect(r).toMatchObject({ status: ENTRY.cancelled, changed: true });
    const log = await a.call("entry/get", { run: "a1", path });
    expect(log.body).toBe("$ sleep 5 → aborted: timed out in 5000 ms; stdout 0 bytes/0 lines, stderr 0 bytes/0 lines");
  });
});
