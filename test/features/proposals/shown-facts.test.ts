// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../../src/client/spool-client.js";
import { createLogger } from "../../../src/logger.js";
import { factsText, proposalFacts } from "../../../src/protocol/proposal-facts.js";
import { ENTRY } from "../../../src/protocol/status.js";
import { RunnerClient } from "../../../src/runners/client/runner-client.js";
import { EMBEDDED_RUNNER } from "../../../src/runners/local/embedded.js";
import { LocalBackend } from "../../../src/runners/local/local.js";
import { finished } from "../../helpers/runners.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../../helpers/server.js";

/**
 * What a person was shown before a decision is what a decision (theirs, or an "always allow" rule's) does:
 * a rule accepts only a proposal whose every shown fact is equal, the runner it goes to included; the runner
 * a proposal naming none goes to is resolved and recorded when it is proposed, and stays that one; runner
 * "self" (no sandbox) takes only commands shown as running in mode full. A real server with its embedded
 * local runner, real WebSocket clients and runners.
 */

const quiet = createLogger("silent");
const COMMAND = "sleep 1; echo ruled";

/** A second local runner, attached to `project` (as its default when asked). */
function secondRunner(ts: TestServer, project: string, name: string, options: { default?: boolean; root?: string } = {}) {
  return new RunnerClient({
    connect: () => SpoolClient.connect(ts.server.url, { token: ts.server.token }),
    project,
    name,
    backend: new LocalBackend(),
    log: quiet,
    backoffMs: { min: 20, max: 200 },
    ...(options.default ? { default: true } : {}),
    ...(options.root ? { root: options.root } : {}),
  });
}

describe("decisions follow what was shown", () => {
  let ts: TestServer;
  const agents: RunnerClient[] = [];
  const embedded = EMBEDDED_RUNNER;
  beforeAll(async () => {
    ts = await startTestServer({ sandbox: "full" });
  });
  afterAll(async () => {
    for (const agent of agents) await agent.stop();
    await ts.stop();
  });

  async function attach(project: string, name: string, options: { default?: boolean; root?: string } = {}) {
    const agent = secondRunner(ts, project, name, options);
    agents.push(agent);
    await agent.start();
    return agent;
  }

  it('an "always allow" rule accepts only a proposal whose every shown fact is equal, the runner it goes to included', async () => {
    const a = await ts.clientIn("rules");
    await a.call("run/create", { alias: "r" });
    const seed = await a.call("proposal/create", { run: "r", tool: "sh", command: COMMAND });
    const seedLog = await a.call("entry/get", { run: "r", path: seed.path });
    // Shown as going to the embedded runner, by name, before the decision.
    expect(seedLog.attributes.defaultRunner).toBe(embedded);
    expect(factsText(proposalFacts(seedLog.attributes))).toMatch(new RegExp(`^runner +default \\(${embedded}; this server's own runner\\)$`, "m"));
    const first = await a.request("run/resolve", { run: "r", path: seed.path, decision: "accept", always: true });
    expect(first.rule).toEqual(expect.any(Number));
    await finished(a, "r", { path: seed.path, stdout: first.channels[0].path, stderr: first.channels[1].path });

    const propose = async (extra: Record<string, unknown> = {}) => {
      const { path } = await a.request("proposal/create", { run: "r", tool: "sh", command: COMMAND, ...extra });
      const log = await a.request("entry/get", { run: "r", path });
      return { path, status: log.status, runner: log.attributes.runner ?? null, resolvedBy: log.attributes.resolvedBy ?? null };
    };
    // The same command, with a fact the person did not see: asked about, each one.
    for (const extra of [{ background: true }, { tty: { cols: 80, rows: 24 } }, { timeout_ms: 86_400_000 }, { env: { EXTRA: "1" } }, { cwd: "sub" }]) {
      const shown = await propose(extra);
      expect({ extra, status: shown.status, resolvedBy: shown.resolvedBy }).toEqual({ extra, status: ENTRY.proposed, resolvedBy: null });
      await a.request("run/resolve", { run: "r", path: shown.path, decision: "reject" });
    }
    // Every fact equal: the rule accepts it, on the runner shown.
    const same = await propose();
    expect(same).toMatchObject({ status: ENTRY.done, runner: embedded, resolvedBy: expect.stringContaining(`rule #${first.rule}`) });

    // Another runner becomes the project's default: the same command would go there, which nobody decided on.
    await attach("rules", "second", { default: true });
    const elsewhere = await propose();
    expect(elsewhere).toMatchObject({ status: ENTRY.proposed, resolvedBy: null });
    const log = await a.request("entry/get", { run: "r", path: elsewhere.path });
    expect(log.attributes.defaultRunner).toBe("second");
    expect(factsText(proposalFacts(log.attributes))).toMatch(/^runner +default \(second; attached by admin "admin", claims [^)]*\)$/m);
  });

  it("a proposal keeps the runner recorded when it was proposed, after the project's default changed", async () => {
    const a = await ts.clientIn("recorded");
    await a.request("run/create", { alias: "k" });
    const notice = a.next("run/proposal", (p: any) => p.run === "k");
    const { path } = await a.request("proposal/create", { run: "k", tool: "sh", command: "echo kept" });
    const shown = await notice;
    expect(shown.producer.defaultRunner).toBe(embedded);
    expect(shown.producer.runner).toBeNull();
    // A runner attached as the default after the proposal was shown.
    await attach("recorded", "late", { default: true });
    expect((await a.request("runner/list", {})).runners.find((r: any) => r.name === "late").default).toBe(true);
    const resolved = await a.request("run/resolve", { run: "k", path, decision: "accept" });
    expect(resolved.runner).toBe(embedded);
    const done = await finished(a, "k", { path, stdout: resolved.channels[0].path, stderr: resolved.channels[1].path });
    expect(done.out.toString()).toBe("kept\n");
    expect(done.log.attributes.runner).toBe(embedded);
  });

  it("a recorded runner that left is NO_RUNNER at the accept, naming it, and nothing changes", async () => {
    const a = await ts.clientIn("gone");
    await a.call("run/create", { alias: "g" });
    const brief = await attach("gone", "brief", { default: true });
    const { path } = await a.call("proposal/create", { run: "g", tool: "sh", command: "echo nowhere" });
    expect((await a.call("entry/get", { run: "g", path })).attributes.defaultRunner).toBe("brief");
    await brief.stop();
    await eventually(async () => !(await a.call("runner/list", {})).runners.some((r: any) => r.name === "brief"), 5_000, "brief to leave");
    await expect(a.call("run/resolve", { run: "g", path, decision: "accept" })).rejects.toMatchObject({ data: { code: "NO_RUNNER", runner: "brief" } });
    const log = await a.call("entry/get", { run: "g", path });
    expect(log.status).toBe(ENTRY.proposed);
    expect(log.attributes.decision).toBeUndefined();
  });

  it('runner "self" takes only a command shown as running in mode full; anything else is NO_RUNNER naming the runners that give its mode', async () => {
    const a = await ts.clientIn("self");
    await a.call("run/create", { alias: "s" });
    const { runners } = await a.call("runner/list", {});
    const giving = (mode: string) =>
      runners
        .filter((r: any) => (r.sandbox.modes ?? (r.sandbox.readOnly ? ["read-only", "full"] : ["full"])).includes(mode))
        .map((r: any) => r.name)
        .sort();
    for (const [tool, sandbox, mode] of [
      ["sh", "workspace-write", "workspace-write"],
      ["sh", "read-only", "read-only"],
      ["env", undefined, "read-only"],
    ] as const) {
      const { path } = await a.call("proposal/create", { run: "s", tool, command: "echo boxed", ...(sandbox ? { sandbox } : {}) });
      await expect(a.call("run/resolve", { run: "s", path, decision: "accept", runner: "self" })).rejects.toMatchObject({
        data: { code: "NO_RUNNER", runner: "self", sandbox: mode, runners: giving(mode) },
        message: expect.stringContaining(`proposed to run in the ${mode} sandbox`),
      });
      const log = await a.call("entry/get", { run: "s", path });
      expect(log.status).toBe(ENTRY.proposed);
      expect((await a.call("entry/list", { run: "s" })).entries.filter((e: any) => e.attributes.log === path)).toEqual([]);
    }
    const { path } = await a.call("proposal/create", { run: "s", tool: "sh", command: "echo unboxed", sandbox: "full" });
    const taken = await a.call("run/resolve", { run: "s", path, decision: "accept", runner: "self" });
    expect(taken).toMatchObject({ runner: "self", resumeToken: expect.any(String) });
  });

  it("the network fact: what the runner the proposal goes to gives a command in its mode, recorded and shown before the decision", async () => {
    const a = await ts.clientIn("network");
    await a.call("run/create", { alias: "n" });
    const { runners } = await a.call("runner/list", {});
    const given = runners.find((r: any) => r.name === embedded)?.sandbox.network;
    // The embedded local runner says what a workspace-write command gets: own with slirp4netns (this machine has it), else the machine's.
    expect(given).toBe(process.env.PATH?.split(":").some((d) => existsSync(`${d}/slirp4netns`)) ? "own" : "shared");
    const shown = async (extra: Record<string, unknown>) => {
      const notice = a.next("run/proposal", (p: any) => p.run === "n");
      const { path } = await a.call("proposal/create", { run: "n", tool: "sh", command: "echo net", ...extra });
      const { producer } = await notice;
      const log = await a.call("entry/get", { run: "n", path });
      expect(proposalFacts(log.attributes).network).toBe(producer.network);
      await a.call("run/resolve", { run: "n", path, decision: "reject" });
      return { network: producer.network, text: factsText(proposalFacts(log.attributes)) };
    };
    const boxed = await shown({ sandbox: "workspace-write" });
    expect(boxed.network).toBe(given);
    expect(boxed.text).toMatch(given === "own" ? /^network +own \(outbound only/m : /^network +shared with the runner's machine/m);
    expect(await shown({ sandbox: "read-only" })).toMatchObject({ network: "none" });
    expect(await shown({ sandbox: "full" })).toMatchObject({ network: "shared" });
  });

  it("a runner that runs the project root's commands elsewhere (--root): the cwd there is shown and used; back with another root, an accept is FACTS_CHANGED and nothing runs", async () => {
    const a = await ts.clientIn("rooted");
    await a.call("run/create", { alias: "r" });
    const there = tempDir("spool-root-there-");
    const first = await attach("rooted", "elsewhere", { root: there });
    const propose = async () => {
      const notice = a.next("run/proposal", (p: any) => p.run === "r");
      const { path } = await a.call("proposal/create", { run: "r", tool: "sh", command: "pwd", runner: "elsewhere" });
      const { producer } = await notice;
      return { path, facts: proposalFacts(producer) };
    };
    const shown = await propose();
    expect(shown.facts.runnerClaim?.root).toBe(there);
    expect(factsText(shown.facts)).toMatch(new RegExp(`^cwd +${there} \\(the project root on the runner; the server's is ${ts.root}\\)$`, "m"));
    const resolved = await a.call("run/resolve", { run: "r", path: shown.path, decision: "accept" });
    const done = await finished(a, "r", { path: shown.path, stdout: resolved.channels[0]!.path, stderr: resolved.channels[1]!.path });
    expect(done.out.toString()).toBe(`${there}\n`);
    // The same runner back with another --root: the cwd shown is not where it would run.
    const again = await propose();
    await first.stop();
    await eventually(async () => !(await a.call("runner/list", {})).runners.some((r: any) => r.name === "elsewhere"), 5_000, "the runner to leave");
    await attach("rooted", "elsewhere", { root: tempDir("spool-root-moved-") });
    await expect(a.call("run/resolve", { run: "r", path: again.path, decision: "accept" })).rejects.toMatchObject({ data: { code: "FACTS_CHANGED" } });
    expect((await a.call("entry/get", { run: "r", path: again.path })).status).toBe(ENTRY.proposed);
  });
});
