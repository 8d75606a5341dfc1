// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../../src/client/spool-client.js";
import { createLogger } from "../../../src/logger.js";
import { factsText, proposalFacts } from "../../../src/protocol/proposal-facts.js";
import { ENTRY } from "../../../src/protocol/status.js";
import { RunnerClient } from "../../../src/runners/client/runner-client.js";
import { LocalBackend } from "../../../src/runners/local/local.js";
import { finished } from "../../helpers/runners.js";
import { describeWithBwrap } from "../../helpers/sandbox.js";
import { startTestServer, type TestServer } from "../../helpers/server.js";

/**
 * A proposal that names its runner (proposal/create `runner`): every client is shown that runner before
 * the decision, an accept without a runner runs it there, an accept naming another one is refused, and an
 * "always allow" rule stored for it accepts nothing proposed for another. Real WebSocket runners.
 */

const quiet = createLogger("silent");

/** A local runner; `bare`: one that reports no sandbox at all. */
function runner(ts: TestServer, project: string, name: string, options: { default?: boolean; bare?: boolean } = {}) {
  const backend = new LocalBackend();
  if (options.bare) backend.sandbox = async () => ({ kind: "none", readOnly: false, detail: "a test runner without a sandbox" });
  return new RunnerClient({
    connect: () => SpoolClient.connect(ts.server.url, { token: ts.server.token }),
    project,
    name,
    backend,
    log: quiet,
    backoffMs: { min: 20, max: 200 },
    ...(options.default ? { default: true } : {}),
  });
}

describe("a proposal names its runner", () => {
  let ts: TestServer;
  const agents: RunnerClient[] = [];
  let a: SpoolClient;
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false, sandbox: "full" });
    // The projects exist (at the test root) before their runners attach by name.
    a = await ts.clientIn("named");
    await ts.clientIn("elsewhere");
    for (const agent of [runner(ts, "named", "alpha", { default: true }), runner(ts, "named", "beta"), runner(ts, "elsewhere", "delta")]) {
      agents.push(agent);
      await agent.start();
    }
  });
  afterAll(async () => {
    for (const agent of agents) await agent.stop();
    await ts.stop();
  });

  it("run/proposal and proposal/list show the proposed runner; an accept naming none runs it there", async () => {
    const watcher = await ts.clientIn("named");
    await a.call("run/create", { alias: "to-beta" });
    const notice = watcher.next("run/proposal", (p: any) => p.run === "to-beta");
    const { path } = await a.call("proposal/create", { run: "to-beta", tool: "sh", command: "echo on-beta", runner: "beta" });
    const shown = await notice;
    expect(shown.attributes.runner).toBe("beta");
    expect(proposalFacts(shown.attributes).runner).toBe("beta");
    // What the CLI, the web card, ACP and spool mcp print: the runner, not "default".
    expect(factsText(proposalFacts(shown.attributes), { defaultRunner: "alpha" })).toMatch(/^runner +beta \(attached by admin "admin", claims [^)]*\)$/m);
    const { proposals } = await watcher.call("proposal/list", { run: "to-beta" });
    expect(proposals.map((p: any) => [p.path, p.attributes.runner])).toEqual([[path, "beta"]]);
    const resolved = await watcher.request("run/resolve", { run: "to-beta", path, decision: "accept" });
    expect(resolved.runner).toBe("beta");
    const done = await finished(a, "to-beta", { path, stdout: resolved.channels[0].path, stderr: resolved.channels[1].path });
    expect(done.out.toString()).toBe("on-beta\n");
    expect(done.log.attributes.runner).toBe("beta");
  });

  it("an accept naming another runner than proposed is CONFLICT and changes nothing; naming the same one runs it", async () => {
    await a.call("run/create", { alias: "other" });
    const { path } = await a.call("proposal/create", { run: "other", tool: "sh", command: "echo same", runner: "beta" });
    for (const other of ["alpha", "self"]) {
      await expect(a.call("run/resolve", { run: "other", path, decision: "accept", runner: other })).rejects.toMatchObject({
        data: { code: "CONFLICT", runner: "beta", requested: other },
      });
    }
    const log = await a.call("entry/get", { run: "other", path });
    expect(log.status).toBe(ENTRY.proposed);
    expect(log.attributes.runner).toBe("beta");
    expect(log.attributes.decision).toBeUndefined();
    expect((await a.call("entry/list", { run: "other" })).entries.map((e: any) => e.path)).toEqual([path]);
    expect((await a.call("proposal/list", { run: "other" })).proposals).toHaveLength(1);
    const resolved = await a.request("run/resolve", { run: "other", path, decision: "accept", runner: "beta" });
    expect(resolved.runner).toBe("beta");
    await finished(a, "other", { path, stdout: resolved.channels[0].path, stderr: resolved.channels[1].path });
  });

  it("a proposal naming no runner may still be accepted on any runner", async () => {
    await a.call("run/create", { alias: "open" });
    const { path } = await a.call("proposal/create", { run: "open", tool: "sh", command: "echo anywhere" });
    expect((await a.call("entry/get", { run: "open", path })).attributes.runner).toBeUndefined();
    const resolved = await a.request("run/resolve", { run: "open", path, decision: "accept", runner: "beta" });
    expect(resolved.runner).toBe("beta");
    await finished(a, "open", { path, stdout: resolved.channels[0].path, stderr: resolved.channels[1].path });
  });

  it("an unknown runner, another project's runner or self is refused at proposal time and nothing is stored", async () => {
    await a.call("run/create", { alias: "unknown" });
    const none = a
      .next("run/proposal", (p: any) => p.run === "unknown", 500)
      .then(
        () => "announced",
        () => "silent",
      );
    for (const name of ["gamma", "delta"]) {
      await expect(a.call("proposal/create", { run: "unknown", tool: "sh", command: "true", runner: name })).rejects.toMatchObject({
        data: { code: "NO_RUNNER", runner: name, runners: ["alpha", "beta"] },
        message: expect.stringContaining("attached: alpha, beta"),
      });
    }
    await expect(a.call("proposal/create", { run: "unknown", tool: "sh", command: "true", runner: "self" })).rejects.toMatchObject({
      code: -32602,
      data: { issues: [expect.objectContaining({ path: "runner" })] },
    });
    for (const runnerParam of ["", 7, "x".repeat(201)]) {
      await expect(a.request("proposal/create", { run: "unknown", tool: "sh", command: "true", runner: runnerParam })).rejects.toMatchObject({ code: -32602 });
    }
    expect((await a.call("entry/list", { run: "unknown" })).entries).toEqual([]);
    expect(await none).toBe("silent");
  });

  it('an "always allow" rule stored for one runner accepts nothing proposed for another (or for none)', async () => {
    await a.call("run/create", { alias: "rules" });
    const seed = await a.call("proposal/create", { run: "rules", tool: "sh", command: "echo ruled", runner: "beta" });
    const first = await a.request("run/resolve", { run: "rules", path: seed.path, decision: "accept", always: true });
    expect(first.rule).toEqual(expect.any(Number));
    await finished(a, "rules", { path: seed.path, stdout: first.channels[0].path, stderr: first.channels[1].path });
    const status = async (runnerName?: string) => {
      const { path } = await a.call("proposal/create", { run: "rules", tool: "sh", command: "echo ruled", ...(runnerName ? { runner: runnerName } : {}) });
      const log = await a.call("entry/get", { run: "rules", path });
      return { status: log.status, runner: log.attributes.runner ?? null, resolvedBy: log.attributes.resolvedBy ?? null };
    };
    expect(await status("alpha")).toEqual({ status: ENTRY.proposed, runner: "alpha", resolvedBy: null });
    expect(await status()).toEqual({ status: ENTRY.proposed, runner: null, resolvedBy: null });
    expect(await status("beta")).toEqual({ status: ENTRY.done, runner: "beta", resolvedBy: expect.stringContaining(`rule #${first.rule}`) });
  });
});

describeWithBwrap("the sandbox mode of a proposal is the one its proposed runner gives", () => {
  let ts: TestServer;
  const agents: RunnerClient[] = [];
  let a: SpoolClient;
  beforeAll(async () => {
    // sandbox "auto": workspace-write where the runner can, else full with the reason.
    ts = await startTestServer({ localRunner: false });
    a = await ts.clientIn("modes");
    for (const agent of [runner(ts, "modes", "boxed", { default: true }), runner(ts, "modes", "bare", { bare: true })]) {
      agents.push(agent);
      await agent.start();
    }
    await a.call("run/create", { alias: "m" });
  });
  afterAll(async () => {
    for (const agent of agents) await agent.stop();
    await ts.stop();
  });

  it("auto records workspace-write for the sandboxed default and full (with the reason) for a bare proposed runner", async () => {
    const attributes = async (params: Record<string, unknown>) => {
      const { path } = await a.call("proposal/create", { run: "m", tool: "sh", command: "true", ...params });
      return (await a.call("entry/get", { run: "m", path })).attributes;
    };
    expect(await attributes({})).toMatchObject({ sandbox: "workspace-write" });
    expect(await attributes({ runner: "boxed" })).toMatchObject({ sandbox: "workspace-write", runner: "boxed" });
    const bare = await attributes({ runner: "bare" });
    expect(bare).toMatchObject({ sandbox: "full", runner: "bare" });
    expect(bare.sandboxReason).toContain('runner "bare" has no workspace-write sandbox');
  });

  it("work the proposed runner could never run in its mode is NO_RUNNER at proposal time", async () => {
    const before = (await a.call("entry/list", { run: "m" })).entries.length;
    for (const params of [
      { tool: "env", command: "true", runner: "bare" },
      { tool: "sh", command: "true", runner: "bare", sandbox: "workspace-write" },
    ]) {
      await expect(a.request("proposal/create", { run: "m", ...params })).rejects.toMatchObject({ data: { code: "NO_RUNNER", runner: "bare" } });
    }
    expect((await a.call("entry/list", { run: "m" })).entries.length).toBe(before);
  });
});
