import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

/**
 * A runner played by hand over a real WebSocket: it attaches, records each
 * `runner/exec` it gets, and streams only when the test says so.
 */
async function handRunner(ts: TestServer, project: string, name: string, extra: Record<string, unknown> = {}) {
  const client = await ts.clientIn(project);
  const execs: { run: string; path: string }[] = [];
  const waiters: ((p: { run: string; path: string }) => void)[] = [];
  client.handle("runner/exec", (p: { run: string; path: string }) => {
    const waiter = waiters.shift();
    if (waiter) waiter(p);
    else execs.push(p);
    return { started: true, target: { backend: "local", pid: process.pid } };
  });
  const attached = await client.call("runner/attach", { name, backend: "local", ...extra });
  const nextExec = () => (execs.length ? Promise.resolve(execs.shift()!) : new Promise<{ run: string; path: string }>((r) => waiters.push(r)));
  return { client, attached, nextExec };
}

const code = (c: string) => ({ data: { code: c } });

describe("a producer has one owner", () => {
  let ts: TestServer;
  /** A server whose grace no busy machine outruns: what must come back within it does, however slow the reconnect. */
  let patient: TestServer;
  beforeAll(async () => {
    // Hand-made runners that report no sandbox: these tests are about ownership, so sh commands are proposed full.
    // The short grace is for the tests that wait for it to pass.
    ts = await startTestServer({ localRunner: false, runnerGraceMs: 300, sandbox: "full" });
    patient = await startTestServer({ localRunner: false, runnerGraceMs: 120_000, sandbox: "full" });
  });
  afterAll(async () => {
    await ts.stop();
    await patient.stop();
  });

  it("a third connection cannot forge a runner's output or exit code; the runner's real output is stored", async () => {
    const runner = await handRunner(ts, "forge", "builder");
    const person = await ts.clientIn("forge");
    const forger = await ts.clientIn("forge");
    await person.call("run/create", { alias: "r" });
    const { path } = await person.call("proposal/create", { run: "r", tool: "sh", command: "npm test" });
    const exec = runner.nextExec();
    await person.call("run/resolve", { run: "r", path, decision: "accept", runner: "builder" });
    expect((await exec).path).toBe(path);

    await expect(forger.call("stream", { run: "r", path, channel: 1, chunk: "ALL 120 TESTS PASSED\n", seq: 1 })).rejects.toMatchObject(code("NOT_OWNER"));
    await expect(forger.call("stream/completed", { run: "r", path, exit_code: 0 })).rejects.toMatchObject(code("NOT_OWNER"));
    await expect(forger.call("stream/aborted", { run: "r", path, reason: "forged" })).rejects.toMatchObject(code("NOT_OWNER"));
    // The person who accepted is not the owner either: the runner is.
    await expect(person.call("stream", { run: "r", path, channel: 1, chunk: "x", seq: 1 })).rejects.toMatchObject(code("NOT_OWNER"));
    const stdout = "sh://turn_1/npm-test_1";
    expect(await person.call("entry/get", { run: "r", path: stdout })).toMatchObject({ status: ENTRY.streaming, body: "", bytes: 0 });

    expect(await runner.client.call("stream", { run: "r", path, channel: 1, chunk: "3 failed\n", seq: 1 })).toMatchObject({ seq: 1, duplicate: false });
    expect(await runner.client.call("stream/completed", { run: "r", path, exit_code: 1, duration: "1.2s" })).toMatchObject({
      status: ENTRY.failed,
      changed: true,
    });
    expect(await person.call("entry/get", { run: "r", path: stdout })).toMatchObject({
      status: ENTRY.failed,
      body: "3 failed\n",
      attributes: { exit_code: 1, duration: 1200 },
    });
    const log = await person.call("entry/get", { run: "r", path });
    expect(log.body).toBe("$ npm test → exit 1 in 1200 ms; stdout 9 bytes/1 line, stderr 0 bytes/0 lines");
    // Once finished, a forged completion reports what is there and changes nothing.
    expect(await forger.call("stream/completed", { run: "r", path, exit_code: 0 })).toMatchObject({ status: ENTRY.failed, changed: false });
  });

  it("a repeated seq is acknowledged only with the same bytes; other bytes are CONFLICT and change nothing", async () => {
    const c = await ts.clientIn("seq");
    const { path } = await proposeAndAccept(c, c, "r", "echo hi", { runner: "self" });
    await c.call("stream", { run: "r", path, channel: 1, chunk: "real\n", seq: 1 });
    expect(await c.call("stream", { run: "r", path, channel: 1, chunk: "real\n", seq: 1 })).toMatchObject({ seq: 1, duplicate: true, bytes: 5 });
    await expect(c.call("stream", { run: "r", path, channel: 1, chunk: "fake\n", seq: 1 })).rejects.toMatchObject({ data: { code: "CONFLICT", seq: 1 } });
    expect(await c.call("entry/get", { run: "r", path: "sh://turn_1/echo-hi_1" })).toMatchObject({ body: "real\n", bytes: 5 });
  });

  it("anyone in the project may cancel; the owner is told and its later writes are refused", async () => {
    const runner = await handRunner(ts, "cancel", "worker");
    const bystander = await ts.clientIn("cancel");
    await bystander.call("run/create", { alias: "r" });
    const { path } = await bystander.call("proposal/create", { run: "r", tool: "sh", command: "sleep 100" });
    const exec = runner.nextExec();
    await bystander.call("run/resolve", { run: "r", path, decision: "accept", runner: "worker" });
    await exec;
    const told = runner.client.next("stream/cancelled", (p) => p.path === path);
    expect(await bystander.call("stream/cancel", { run: "r", path, reason: "enough" })).toMatchObject({ status: ENTRY.cancelled, changed: true });
    expect(await told).toEqual({ run: "r", path, reason: "enough" });
    await expect(runner.client.call("stream", { run: "r", path, channel: 1, chunk: "late", seq: 1 })).rejects.toMatchObject(code("STREAM_CLOSED"));
    expect(await runner.client.call("stream/aborted", { run: "r", path, reason: "killed" })).toMatchObject({ status: ENTRY.cancelled, changed: false });
  });

  it("a self-streamer that vanishes ends 499 owner lost after the grace, its output so far kept", async () => {
    const watcher = await ts.clientIn("vanish");
    const gone = await ts.clientIn("vanish");
    const { path: lost } = await proposeAndAccept(watcher, gone, "r", "lost one", { runner: "self" });
    await gone.call("stream", { run: "r", path: lost, channel: 1, chunk: "a\n", seq: 1 });
    const ended = watcher.next("stream/finished", (p) => p.path === lost);
    gone.close();
    expect(await ended).toMatchObject({ status: ENTRY.cancelled, outcome: "aborted", reason: "owner lost" });
    expect(await watcher.call("entry/get", { run: "r", path: "sh://turn_1/lost-one_1" })).toMatchObject({
      status: ENTRY.cancelled,
      body: "a\n",
      attributes: { reason: "owner lost" },
    });
  });

  it("a self-streamer that claims its producer back within the grace keeps it; its token opens no one else's", async () => {
    const watcher = await patient.clientIn("vanish");
    const other = await patient.clientIn("vanish");
    const back = await patient.clientIn("vanish");
    const { path: theirs } = await proposeAndAccept(watcher, other, "r", "their one", { runner: "self" });
    const { path: kept, resolved } = await proposeAndAccept(watcher, back, "r", "kept one", { runner: "self" });
    await back.call("stream", { run: "r", path: kept, channel: 1, chunk: "a\n", seq: 1 });
    other.close();
    back.close();
    const again = await patient.clientIn("vanish");
    expect(await again.call("stream/claim", { run: "r", path: kept, token: resolved.resumeToken! })).toMatchObject({
      status: ENTRY.streaming,
      channels: [{ lastSeq: 1 }, { lastSeq: 0 }],
    });
    await again.call("stream", { run: "r", path: kept, channel: 1, chunk: "b\n", seq: 2 });
    expect(await again.call("stream/completed", { run: "r", path: kept, exit_code: 0 })).toMatchObject({ status: ENTRY.done, changed: true });
    expect(await watcher.call("entry/get", { run: "r", path: "sh://turn_1/kept-one_1" })).toMatchObject({ status: ENTRY.done, body: "a\nb\n" });
    // A token does not open someone else's producer (waiting in its grace too), and a wrong one opens nothing.
    await expect(again.request("stream/claim", { run: "r", path: theirs, token: resolved.resumeToken })).rejects.toMatchObject(code("NOT_OWNER"));
    await expect(again.request("stream/claim", { run: "r", path: theirs, token: "x".repeat(32) })).rejects.toMatchObject(code("NOT_OWNER"));
  });

  it("a runner's name cannot be stolen: during the grace only its resume token takes it (and its producers) back", async () => {
    const runner = await handRunner(patient, "steal", "ci");
    const token = runner.attached.resumeToken as string;
    const person = await patient.clientIn("steal");
    await person.call("run/create", { alias: "r" });
    const { path } = await person.call("proposal/create", { run: "r", tool: "sh", command: "make" });
    const exec = runner.nextExec();
    await person.call("run/resolve", { run: "r", path, decision: "accept", runner: "ci" });
    await exec;
    await runner.client.call("stream", { run: "r", path, channel: 1, chunk: "one\n", seq: 1 });
    const closed = new Promise<void>((r) => runner.client.onClose(() => r()));
    runner.client.close();
    await closed;

    const thief = await patient.clientIn("steal");
    await eventually(
      async () => {
        try {
          await thief.call("runner/attach", { name: "ci", backend: "local", resume: [{ run: "r", path }] });
          return false;
        } catch (error) {
          return (error as { data?: { code?: string } }).data?.code === "NOT_OWNER";
        }
      },
      30_000,
      "the name to be held for its runner",
    );
    await expect(thief.call("runner/attach", { name: "ci", backend: "local", resumeToken: "x".repeat(32) })).rejects.toMatchObject(code("NOT_OWNER"));
    await expect(thief.call("stream", { run: "r", path, channel: 1, chunk: "forged\n", seq: 2 })).rejects.toMatchObject(code("NOT_OWNER"));

    const back = await patient.clientIn("steal");
    const again = await back.call("runner/attach", { name: "ci", backend: "local", resumeToken: token, resume: [{ run: "r", path }] });
    expect(again).toMatchObject({ resumeToken: token, resumed: [{ run: "r", path, lastSeq: { 1: 1, 2: 0 } }], finished: [] });
    await back.call("stream", { run: "r", path, channel: 1, chunk: "two\n", seq: 2 });
    await back.call("stream/completed", { run: "r", path, exit_code: 0 });
    expect(await person.call("entry/get", { run: "r", path: "sh://turn_1/make_1" })).toMatchObject({ status: ENTRY.done, body: "one\ntwo\n" });
  });

  it("after the grace a vanished runner's producers end 499 runner lost and its name is free", async () => {
    const runner = await handRunner(ts, "free", "gone");
    const person = await ts.clientIn("free");
    await person.call("run/create", { alias: "r" });
    const { path } = await person.call("proposal/create", { run: "r", tool: "sh", command: "sleep 9" });
    const exec = runner.nextExec();
    await person.call("run/resolve", { run: "r", path, decision: "accept", runner: "gone" });
    await exec;
    const ended = person.next("stream/finished", (p) => p.path === path);
    runner.client.close();
    expect(await ended).toMatchObject({ status: ENTRY.cancelled, reason: "runner lost" });
    const newcomer = await ts.clientIn("free");
    expect(await newcomer.call("runner/attach", { name: "gone", backend: "local" })).toMatchObject({ name: "gone", resumed: [], finished: [] });
  });

  it("two runners cannot both be the default: the second is refused naming the first unless it says replaceDefault", async () => {
    const first = await handRunner(ts, "defaults", "alpha", { default: true });
    expect(first.attached.default).toBe(true);
    const second = await ts.clientIn("defaults");
    await expect(second.call("runner/attach", { name: "beta", backend: "local", default: true })).rejects.toMatchObject({
      data: { code: "CONFLICT", default: "alpha" },
      message: expect.stringContaining('"alpha"'),
    });
    // The refused attach changed nothing: the connection can attach again, and alpha is still the default.
    const list = async () => (await first.client.call("runner/list", {})).runners.map((r: { name: string; default: boolean }) => [r.name, r.default]);
    expect(await list()).toEqual([["alpha", true]]);
    const person = await ts.clientIn("defaults");
    await person.call("run/create", { alias: "r" });
    const p1 = await person.call("proposal/create", { run: "r", tool: "sh", command: "one" });
    const toAlpha = first.nextExec();
    expect((await person.call("run/resolve", { run: "r", path: p1.path, decision: "accept" })).runner).toBe("alpha");
    await toAlpha;

    expect(await second.call("runner/attach", { name: "beta", backend: "local", default: true, replaceDefault: true })).toMatchObject({ default: true });
    expect(await list()).toEqual([
      ["alpha", false],
      ["beta", true],
    ]);
    const p2 = await person.call("proposal/create", { run: "r", tool: "sh", command: "two" });
    second.handle("runner/exec", () => ({ started: true }));
    expect((await person.call("run/resolve", { run: "r", path: p2.path, decision: "accept" })).runner).toBe("beta");
    // A named runner is still picked by name.
    const p3 = await person.call("proposal/create", { run: "r", tool: "sh", command: "three" });
    const named = first.nextExec();
    expect((await person.call("run/resolve", { run: "r", path: p3.path, decision: "accept", runner: "alpha" })).runner).toBe("alpha");
    expect((await named).path).toBe(p3.path);
  });

  it("finishing calls take the earlier runtime's readable duration; a malformed one is INVALID_PARAMS and changes nothing", async () => {
    const c: SpoolClient = await ts.clientIn("duration");
    const { path } = await proposeAndAccept(c, c, "r", "true", { runner: "self" });
    await expect(c.call("stream/completed", { run: "r", path, exit_code: 0, duration: "fast" })).rejects.toMatchObject(code("INVALID_PARAMS"));
    expect((await c.call("entry/get", { run: "r", path: "sh://turn_1/true_1" })).status).toBe(ENTRY.streaming);
    expect(await c.call("stream/completed", { run: "r", path, exit_code: 0, duration: "1m2.5s" })).toMatchObject({ status: ENTRY.done });
    expect((await c.call("entry/get", { run: "r", path })).attributes.duration).toBe(62_500);
  });
});
