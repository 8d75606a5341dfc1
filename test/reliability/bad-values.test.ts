// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { mkdirSync, realpathSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isLoopback } from "../../src/auth.js";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import { RUN } from "../../src/protocol/status.js";
import { finished } from "../helpers/runners.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/** The error a call fails with, or a failure if it succeeds. */
async function refusal(call: Promise<unknown>): Promise<{ code: number; data: any }> {
  const outcome = await call.then(
    (result) => ({ ok: true as const, result }),
    (error: { code: number; data: any }) => ({ ok: false as const, error }),
  );
  if (outcome.ok) throw new Error(`expected a refusal, got ${JSON.stringify(outcome.result)}`);
  return outcome.error;
}

/** Every entry of a run and every proposal notice seen: what a refused call must not have changed. */
async function snapshot(client: SpoolClient, run: string) {
  const { entries } = await client.call("entry/list", { run });
  const { run: row } = await client.call("run/get", { run });
  return { entries: entries.map((e: any) => [e.path, e.status]), turn: row.turn, status: row.status };
}

describe("bad values fail fast and change nothing", () => {
  let ts: TestServer;
  let client: SpoolClient;
  let watcher: SpoolClient;
  const proposals: any[] = [];
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: true });
    client = await ts.clientIn("bad-values");
    watcher = await ts.clientIn("bad-values");
    watcher.on("run/proposal", (p) => proposals.push(p));
    await client.call("run/create", { alias: "r" });
  });
  afterAll(() => ts.stop());

  it("a NUL byte in command, cwd, an env value or an env name is -32602 with data.issues naming the field", async () => {
    const before = await snapshot(client, "r");
    const cases: [object, string][] = [
      [{ command: "echo a\u0000rm -rf /" }, "command"],
      [{ command: "\u0000" }, "command"],
      [{ command: "pwd", cwd: "sub\u0000/../.." }, "cwd"],
      [{ command: "env", env: { SAFE: "x\u0000y" } }, "env.SAFE"],
      [{ command: "env", env: { "BAD\u0000NAME": "x" } }, "env.BAD\u0000NAME"],
    ];
    for (const [params, field] of cases) {
      const error = await refusal(client.request("proposal/create", { run: "r", tool: "sh", ...params }));
      expect(error.code, JSON.stringify(params)).toBe(-32602);
      expect(error.data.code).toBe("INVALID_PARAMS");
      expect(error.data.issues.map((i: { path: string }) => i.path)).toContain(field);
    }
    // The same for the read-only tool.
    expect((await refusal(client.call("proposal/create", { run: "r", tool: "env", command: "ls\u0000" }))).code).toBe(-32602);
    // Nothing was written, nobody was told about a proposal, and the server goes on serving.
    expect(await snapshot(client, "r")).toEqual(before);
    expect(proposals).toEqual([]);
    expect((await client.call("ping", {})).pong).toBe(true);
    const ok = await client.call("proposal/create", { run: "r", tool: "sh", command: "echo fine", env: { SAFE: "x y" } });
    await eventually(() => proposals.length === 1);
    expect(proposals[0]).toMatchObject({ path: ok.path, command: "echo fine" });
  });

  it("a symbolic link inside the root cannot lead the cwd outside it, nor can a dangling one; links within the root are followed", async () => {
    const root = ts.root;
    const outside = tempDir("spool-outside-");
    mkdirSync(join(root, "real", "deep"), { recursive: true });
    symlinkSync(outside, join(root, "escape"));
    symlinkSync(join(outside, "not-yet"), join(root, "dangling"));
    symlinkSync(join(root, "real"), join(root, "inside"));
    symlinkSync("../../..", join(root, "real", "deep", "up2"));
    await client.call("run/create", { alias: "links" });
    const before = await snapshot(client, "links");
    const seen = proposals.length;
    for (const cwd of ["escape", "escape/sub/new", "dangling", "dangling/new", "real/deep/up2", "inside/deep/up2/new", "inside/../escape"]) {
      const error = await refusal(client.call("proposal/create", { run: "links", tool: "sh", command: "pwd", cwd })).catch((e: Error) => {
        throw new Error(`cwd ${cwd}: ${e.message}`);
      });
      expect(error.data, cwd).toMatchObject({ code: "INVALID_PARAMS", issues: [{ path: "cwd" }] });
    }
    expect(await snapshot(client, "links")).toEqual(before);
    expect(proposals.length).toBe(seen);

    // A link that stays inside is fine: the recorded cwd is where it really leads, and the command runs there.
    const { path } = await client.call("proposal/create", { run: "links", tool: "sh", command: "pwd", cwd: "inside/deep" });
    const log = await client.call("entry/get", { run: "links", path });
    expect(log.attributes.cwd).toBe(join("real", "deep"));
    const resolved = await client.request("run/resolve", { run: "links", path, decision: "accept" });
    const done = await finished(client, "links", { path, stdout: resolved.channels[0].path, stderr: resolved.channels[1].path });
    expect(done.out.toString()).toBe(`${realpathSync(join(root, "real", "deep"))}\n`);

    // A directory that does not exist yet is judged by its deepest existing ancestor.
    const fresh = await client.call("proposal/create", { run: "links", tool: "sh", command: "true", cwd: "inside/new/dir" });
    expect((await client.call("entry/get", { run: "links", path: fresh.path })).attributes.cwd).toBe(join("real", "new", "dir"));
    // A name that merely starts with two dots is inside.
    const dotted = await client.call("proposal/create", { run: "links", tool: "sh", command: "true", cwd: "..hidden" });
    expect((await client.call("entry/get", { run: "links", path: dotted.path })).attributes.cwd).toBe("..hidden");
    // ".." is taken by name before links are followed (as `cd` does): "real/deep/up2/.." is real/deep, and that is what runs.
    const named = await client.call("proposal/create", { run: "links", tool: "sh", command: "true", cwd: "real/deep/up2/.." });
    expect((await client.call("entry/get", { run: "links", path: named.path })).attributes.cwd).toBe(join("real", "deep"));
  });

  it("the agent's sh and env tools refuse a NUL byte: the model is told, nothing is proposed", async () => {
    const model = await ScriptedModel.start();
    const agent = await startTestServer({
      env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" },
    });
    try {
      model.reply(
        {
          tools: [
            { id: "call_sh", name: "sh", arguments: { command: "cat /etc/passwd\u0000.txt" } },
            { id: "call_cwd", name: "sh", arguments: { command: "ls", cwd: "a\u0000b" } },
            { id: "call_env", name: "env", arguments: { command: "ls\u0000" } },
          ],
        },
        { tools: [{ id: "call_done", name: "done", arguments: { summary: "gave up" } }] },
      );
      const c = await agent.clientIn("agent-nul");
      const notices: unknown[] = [];
      c.on("run/proposal", (p) => notices.push(p));
      await c.call("run/create", { alias: "a", model: "test", prompt: "read it" });
      await eventually(async () => (await c.call("run/get", { run: "a" })).run.status === RUN.done, 15_000, "the run to finish");
      for (const id of ["call_sh", "call_cwd", "call_env"]) expect(toolResult(model.requests[1]!, id), id).toMatch(/must not contain NUL bytes/);
      expect(notices).toEqual([]);
      const { entries } = await c.call("entry/list", { run: "a", pattern: "log://*" });
      expect(entries).toEqual([]);
    } finally {
      await agent.stop();
      await model.close();
    }
  }, 30_000);
});

describe("isLoopback parses addresses", () => {
  it("takes 127.0.0.0/8, ::1 (any spelling), ::ffff:127.x and localhost; nothing that merely looks like them", () => {
    for (const host of [
      "localhost",
      "LocalHost",
      "localhost.",
      "127.0.0.1",
      "127.1.2.3",
      "127.255.255.254",
      "::1",
      "[::1]",
      "0:0:0:0:0:0:0:1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
    ]) {
      expect(isLoopback(host), host).toBe(true);
    }
    for (const host of [
      "127.evil.example",
      "127.",
      "127.0.0.1.nip.io",
      "localhost.evil.example",
      "::10",
      "::",
      "0.0.0.0",
      "10.0.0.1",
      "::ffff:10.0.0.1",
      "fe80::1%lo",
      "",
      "1.127.0.0",
    ]) {
      expect(isLoopback(host), host).toBe(false);
    }
  });

  it("a server on an IPv4-mapped loopback address does not warn about exposure; its clients connect and work", async () => {
    const warnings: string[] = [];
    const logger = { ...createLogger("silent"), warn: (message: string) => void warnings.push(message) };
    const ts = await startTestServer({ host: "::ffff:127.0.0.1", logger });
    try {
      expect(ts.server.url).toMatch(/^ws:\/\/\[::ffff:127\.0\.0\.1\]:\d+\/$/);
      const c = await ts.clientIn("loopback");
      expect((await c.call("ping", {})).pong).toBe(true);
      expect(warnings.filter((w) => w.includes("not a loopback address"))).toEqual([]);
    } finally {
      await ts.stop();
    }
  });
});
