import { createHash } from "node:crypto";
import { mkdirSync, realpathSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import { ENTRY } from "../../src/protocol/status.js";
import { RunnerClient } from "../../src/runners/client/runner-client.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { finished } from "../helpers/runners.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

const quiet = createLogger("silent");

function agentFor(ts: TestServer, project: string, name: string, extra: Partial<ConstructorParameters<typeof RunnerClient>[0]> = {}) {
  return new RunnerClient({
    connect: () => SpoolClient.connect(ts.server.url, { token: ts.server.token }),
    project,
    name,
    backend: new LocalBackend(),
    log: quiet,
    backoffMs: { min: 20, max: 200 },
    ...extra,
  });
}

describe("dispatch to the embedded local runner", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
  });
  afterAll(() => ts.stop());

  it("an accept that names no runner runs on the embedded runner, in the project root", async () => {
    const a = await ts.clientIn("embedded");
    const b = await ts.clientIn("embedded");
    const paths = await proposeAndAccept(a, b, "e1", "pwd; echo to-stderr >&2; exit 3");
    expect(paths.resolved.runner).toBe("local");
    const done = await finished(a, "e1", paths);
    expect(done.out.toString()).toBe(`${realpathSync(ts.root)}\n`);
    expect(done.err.toString()).toBe("to-stderr\n");
    expect(done.stdout.status).toBe(ENTRY.failed);
    expect(done.stdout.attributes).toMatchObject({ exit_code: 3 });
    expect(done.log.body).toMatch(/→ exit 3 in \d+ ms; stdout \d+ bytes\/1 line, stderr 10 bytes\/1 line/);
    const { runners } = await a.call("runner/list", {});
    expect(runners).toEqual([expect.objectContaining({ name: "local", backend: "local", embedded: true, running: 0 })]);
  });

  it("a proposal's cwd and env reach the command", async () => {
    const a = await ts.clientIn("embedded");
    await a.call("run/create", { alias: "e2" });
    const { path } = await a.call("proposal/create", { run: "e2", tool: "sh", command: 'echo "$GREETING from $(pwd)"', cwd: ".", env: { GREETING: "hi" } });
    const resolved = await a.request("run/resolve", { run: "e2", path, decision: "accept", runner: "local" });
    const done = await finished(a, "e2", { path, stdout: resolved.channels[0].path, stderr: resolved.channels[1].path });
    expect(done.out.toString()).toBe(`hi from ${realpathSync(ts.root)}\n`);
    expect(done.stdout.status).toBe(ENTRY.done);
  });

  it("a command over its timeout is killed and ends 499", async () => {
    const a = await ts.clientIn("embedded");
    await a.call("run/create", { alias: "e3" });
    const { path } = await a.call("proposal/create", { run: "e3", tool: "sh", command: "echo started; sleep 30", timeout_ms: 300 });
    const resolved = await a.request("run/resolve", { run: "e3", path, decision: "accept" });
    const done = await finished(a, "e3", { path, stdout: resolved.channels[0].path, stderr: resolved.channels[1].path });
    expect(done.out.toString()).toBe("started\n");
    expect(done.stdout.status).toBe(ENTRY.cancelled);
    expect(done.stdout.attributes.reason).toBe("timed out after 300 ms");
  });

  it("a command that cannot start ends 499 with the reason", async () => {
    // The project root is removed after the project was created, so the process cannot start there.
    const root = join(ts.root, "vanishing");
    mkdirSync(root);
    const c = await ts.client();
    await c.initialize("vanishing-root", { root });
    rmSync(root, { recursive: true });
    const paths = await proposeAndAccept(c, c, "e4", "true");
    const done = await finished(c, "e4", paths);
    expect(done.stdout.status).toBe(ENTRY.cancelled);
    expect(String(done.stdout.attributes.reason)).toMatch(/^failed to start: Cannot start the command: .*cwd/);
  });
});

describe("attached runners", () => {
  let ts: TestServer;
  const agents: RunnerClient[] = [];
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false, runnerGraceMs: 2_000 });
  });
  afterAll(async () => {
    for (const agent of agents) await agent.stop();
    await ts.stop();
  });

  it("without the embedded runner and with nothing attached, accept is NO_RUNNER; self still works", async () => {
    const a = await ts.clientIn("none");
    await a.call("run/create", { alias: "n1" });
    const { path } = await a.call("proposal/create", { run: "n1", tool: "sh", sandbox: "full", command: "true" });
    await expect(a.call("run/resolve", { run: "n1", path, decision: "accept" })).rejects.toMatchObject({ data: { code: "NO_RUNNER" } });
    await expect(a.call("run/resolve", { run: "n1", path, decision: "accept", runner: "local" })).rejects.toMatchObject({
      data: { code: "NO_RUNNER", runner: "local" },
    });
    expect((await a.call("run/resolve", { run: "n1", path, decision: "accept", runner: "self" })).runner).toBe("self");
    expect((await a.call("runner/list", {})).runners).toEqual([]);
  });

  it("accept goes to the named runner, else the default one", async () => {
    const a = await ts.clientIn("pick");
    const named = agentFor(ts, "pick", "named");
    const fallback = agentFor(ts, "pick", "fallback", { default: true });
    agents.push(named, fallback);
    await named.start();
    await fallback.start();
    const toNamed = await proposeAndAccept(a, a, "p1", "echo one", { runner: "named" });
    const toDefault = await proposeAndAccept(a, a, "p2", "echo two");
    expect(toNamed.resolved.runner).toBe("named");
    expect(toDefault.resolved.runner).toBe("fallback");
    expect((await finished(a, "p1", toNamed)).out.toString()).toBe("one\n");
    expect((await finished(a, "p2", toDefault)).out.toString()).toBe("two\n");
    const { runners } = await a.call("runner/list", {});
    expect(runners.map((r: { name: string; default: boolean }) => [r.name, r.default])).toEqual([
      ["fallback", true],
      ["named", false],
    ]);
    await expect(a.call("run/resolve", { run: "p1", path: toNamed.path, decision: "accept" })).rejects.toMatchObject({ data: { code: "CONFLICT" } });
  });

  it("runner/attach rejects bad input and taken names, and changes nothing", async () => {
    const c = await ts.clientIn("attach");
    const first = agentFor(ts, "attach", "box");
    agents.push(first);
    await first.start();
    for (const [params, code] of [
      [{ name: "box", backend: "local" }, "CONFLICT"],
      [{ name: "self", backend: "local" }, "INVALID_PARAMS"],
      [{ name: "Bad Name", backend: "local" }, "INVALID_PARAMS"],
      [{ name: "x", backend: "kubernetes" }, "INVALID_PARAMS"],
      [{ name: "x", backend: "local", extra: 1 }, "INVALID_PARAMS"],
    ] as const) {
      await expect(c.request("runner/attach", params)).rejects.toMatchObject({ data: { code } });
    }
    const { runners } = await c.call("runner/list", {});
    expect(runners.map((r: { name: string }) => r.name)).toEqual(["box"]);
    const unauthenticated = await ts.client();
    await expect(unauthenticated.call("runner/attach", { name: "y", backend: "local" })).rejects.toMatchObject({ data: { code: "NOT_INITIALIZED" } });
  });

  it("a runner whose connection drops reconnects and resumes from the last acknowledged seq", async () => {
    const a = await ts.clientIn("resume");
    const agent = agentFor(ts, "resume", "flaky", { window: 2, maxChunkBytes: 4096 });
    agents.push(agent);
    await agent.start();
    // About 2 MB of numbered lines, written slowly enough that the drop lands mid-stream.
    const command = "i=0; while [ $i -lt 40 ]; do seq $((i*1000)) $((i*1000+999)) | sed 's/$/ spool-resume-line/'; i=$((i+1)); sleep 0.02; done";
    const paths = await proposeAndAccept(a, a, "r1", command, { runner: "flaky" });
    await eventually(async () => (await a.call("entry/get", { run: "r1", path: paths.stdout, tail: 1 })).bytes > 100_000, 10_000, "some output");
    const runnerConnection = [...ts.server.rpc.connections].find((c) => c.clientInfo?.name === "spool-runner/flaky");
    expect(runnerConnection).toBeDefined();
    runnerConnection!.close(1012, "test drops the runner");
    const done = await finished(a, "r1", paths);
    let expected = "";
    for (let i = 0; i < 40; i++) for (let n = i * 1000; n <= i * 1000 + 999; n++) expected += `${n} spool-resume-line\n`;
    expect(done.stdout.status).toBe(ENTRY.done);
    expect(createHash("sha256").update(done.out).digest("hex")).toBe(createHash("sha256").update(expected).digest("hex"));
    // It is attached again under the same name.
    expect((await a.call("runner/list", {})).runners.map((r: { name: string }) => r.name)).toContain("flaky");
  });
});
