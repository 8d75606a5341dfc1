import { mkdirSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ConnectError } from "../../src/client/ws-transport.js";
import { ENTRY } from "../../src/protocol/status.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { finished } from "../helpers/runners.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

describe("projects are walled off from each other", () => {
  let ts: TestServer;
  beforeAll(async () => {
    // A hand-made runner that reports no sandbox takes the commands: these tests are about projects, so sh runs full.
    ts = await startTestServer({ localRunner: false, sandbox: "full" });
  });
  afterAll(() => ts.stop());

  it("another project's connection can neither read, write, resolve, stream into, watch, prompt, abort nor cancel; nothing changes", async () => {
    const owner = await ts.clientIn("owner");
    const intruder = await ts.client();
    await intruder.initialize("intruder", { root: tempDir() });
    await owner.call("run/create", { alias: "secret" });
    const pending = await owner.call("proposal/create", { run: "secret", tool: "sh", command: "make secret" });
    const streaming = await owner.call("proposal/create", { run: "secret", tool: "sh", sandbox: "full", command: "tail secret" });
    await owner.call("run/resolve", { run: "secret", path: streaming.path, decision: "accept", runner: "self" });
    await owner.call("stream", { run: "secret", path: streaming.path, channel: 1, chunk: "private\n", seq: 1 });
    const attempts: [string, object][] = [
      ["run/get", { run: "secret" }],
      ["entry/get", { run: "secret", path: streaming.path }],
      ["entry/list", { run: "secret" }],
      ["proposal/create", { run: "secret", tool: "sh", command: "steal" }],
      ["run/resolve", { run: "secret", path: pending.path, decision: "accept", runner: "self" }],
      ["stream", { run: "secret", path: streaming.path, channel: 1, chunk: "injected\n", seq: 2 }],
      ["stream/completed", { run: "secret", path: streaming.path, exit_code: 0 }],
      ["stream/cancel", { run: "secret", path: streaming.path }],
      ["stream/subscribe", { run: "secret", path: streaming.path }],
      ["run/prompt", { run: "secret", prompt: "hi" }],
      ["run/abort", { run: "secret" }],
    ];
    for (const [method, params] of attempts) {
      await expect(intruder.request(method, params), method).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    }
    expect((await intruder.call("run/list", {})).runs).toEqual([]);
    const log = await owner.call("entry/get", { run: "secret", path: pending.path });
    expect(log.status).toBe(ENTRY.proposed);
    const channel = await owner.call("entry/list", { run: "secret", pattern: "sh://*_1" });
    expect(channel.entries[0]).toMatchObject({ status: ENTRY.streaming, bytes: 8 });
  });

  it("a runner only receives work for its own project", async () => {
    const a = await ts.clientIn("runner-home");
    const runner = await ts.client();
    await runner.initialize("runner-home");
    const received: unknown[] = [];
    runner.handle("runner/exec", (params) => {
      received.push(params);
      return { started: false, error: "test runner" };
    });
    await runner.call("runner/attach", { name: "box", backend: "local" });
    const other = await ts.client();
    await other.initialize("elsewhere", { root: tempDir() });
    await other.call("run/create", { alias: "r" });
    const { path } = await other.call("proposal/create", { run: "r", tool: "sh", command: "whoami" });
    await expect(other.call("run/resolve", { run: "r", path, decision: "accept", runner: "box" })).rejects.toMatchObject({ data: { code: "NO_RUNNER" } });
    expect((await other.call("runner/list", {})).runners).toEqual([]);
    // In its own project it does get work.
    await proposeAndAccept(a, a, "mine", "true", { runner: "box" });
    await new Promise((r) => setTimeout(r, 200));
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ run: "mine" });
  });
});

describe("configurable limits", () => {
  it("a command's cwd cannot leave the project root unless limits.allowCwdOutsideRoot is on", async () => {
    const strict = await startTestServer();
    const loose = await startTestServer({ limits: { allowCwdOutsideRoot: true } });
    try {
      for (const [ts, allowed] of [
        [strict, false],
        [loose, true],
      ] as const) {
        // The project one level into a directory of its own: its parent (the cwd asked for) holds no Spool home,
        // which the sandbox would refuse to put in a command's view.
        const root = join(tempDir(), "project");
        mkdirSync(root);
        const c = await ts.client();
        await c.initialize("cwd", { root });
        await c.call("run/create", { alias: "r" });
        const attempt = c.call("proposal/create", { run: "r", tool: "sh", command: "pwd", cwd: ".." });
        if (!allowed) {
          await expect(attempt).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
          continue;
        }
        const { path } = await attempt;
        const resolved = await c.call("run/resolve", { run: "r", path, decision: "accept" });
        const done = await finished(c, "r", { path, stdout: resolved.channels[0]!.path, stderr: resolved.channels[1]!.path });
        expect(done.out.toString(), done.log.body).toBe(`${dirname(realpathSync(root))}\n`);
      }
    } finally {
      await strict.stop();
      await loose.stop();
    }
  });

  it("connections over limits.maxConnections are refused with HTTP 503; the home's token keeps limits.homeReserve past it", async () => {
    const ts = await startTestServer({ limits: { maxConnections: 3, homeReserve: 1 } });
    try {
      const admin = await ts.client();
      const { token } = await admin.call("token/create", { name: "crowd", role: "viewer" });
      const first = await SpoolClient.connect(ts.server.url, { token });
      await SpoolClient.connect(ts.server.url, { token });
      const third = await SpoolClient.connect(ts.server.url, { token }).catch((e: unknown) => e);
      expect(third).toBeInstanceOf(ConnectError);
      expect((third as ConnectError).status).toBe(503);
      // The home's credential still connects, once past the bound (its reserve), then it is refused too.
      const home = await SpoolClient.connect(ts.server.url, { token: ts.server.token });
      expect((await home.call("ping", {})).pong).toBe(true);
      const past = await SpoolClient.connect(ts.server.url, { token: ts.server.token }).catch((e: unknown) => e);
      expect((past as ConnectError).status).toBe(503);
      home.close();
      first.close();
      await eventually(async () => {
        const again = await SpoolClient.connect(ts.server.url, { token }).catch(() => null);
        again?.close();
        return again !== null;
      });
    } finally {
      await ts.stop();
    }
  });

  it("one principal's connections over limits.maxConnectionsPerPrincipal are refused with HTTP 429; another's and the home's still open", async () => {
    const ts = await startTestServer({ limits: { maxConnectionsPerPrincipal: 3 } });
    const opened: SpoolClient[] = [];
    try {
      const admin = await ts.client();
      const { token: agent } = await admin.call("token/create", { name: "greedy", role: "agent" });
      const { token: person } = await admin.call("token/create", { name: "alice", role: "person" });
      for (let i = 0; i < 3; i++) opened.push(await SpoolClient.connect(ts.server.url, { token: agent }));
      const fourth = await SpoolClient.connect(ts.server.url, { token: agent }).catch((e: unknown) => e);
      expect(fourth).toBeInstanceOf(ConnectError);
      expect((fourth as ConnectError).status).toBe(429);
      // The greedy principal's excess costs no one else a connection: the person's and the home credential's open.
      const alice = await SpoolClient.connect(ts.server.url, { token: person });
      opened.push(alice);
      expect((await alice.call("ping", {})).pong).toBe(true);
      for (let i = 0; i < 4; i++) opened.push(await SpoolClient.connect(ts.server.url, { token: ts.server.token }));
      expect(opened.every((c) => !c.closed)).toBe(true);
      // One closed, the next one opens.
      opened.shift()!.close();
      await eventually(async () => {
        const next = await SpoolClient.connect(ts.server.url, { token: agent }).catch(() => null);
        if (next) opened.push(next);
        return next !== null;
      });
    } finally {
      for (const c of opened) c.close();
      await ts.stop();
    }
  });

  it("unacknowledged stream calls per connection are capped (limits.maxUnackedChunks); refused ones store nothing", async () => {
    const ts = await startTestServer({ localRunner: false, limits: { maxUnackedChunks: 4 } });
    try {
      const c = await ts.clientIn("unacked");
      await c.call("run/create", { alias: "r" });
      const { path } = await c.call("proposal/create", { run: "r", tool: "sh", sandbox: "full", command: "burst" });
      await c.call("run/resolve", { run: "r", path, decision: "accept", runner: "self" });
      const calls = Array.from({ length: 40 }, (_, i) =>
        c.call("stream", { run: "r", path, channel: 1, chunk: `${i}\n` }).then(
          (r) => ({ ok: true as const, seq: r.seq }),
          (e: { data?: { code?: string } }) => ({ ok: false as const, code: e.data?.code }),
        ),
      );
      const outcomes = await Promise.all(calls);
      const refused = outcomes.filter((o) => !o.ok);
      expect(refused.length).toBeGreaterThan(0);
      expect(new Set(refused.map((o) => (o.ok ? "" : o.code)))).toEqual(new Set(["LIMIT_EXCEEDED"]));
      const stored = outcomes.filter((o) => o.ok).length;
      const channel = (await c.call("entry/list", { run: "r", pattern: "sh://*_1" })).entries[0]!;
      expect(channel.lines).toBe(stored);
    } finally {
      await ts.stop();
    }
  });
});
