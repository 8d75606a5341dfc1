import { rmSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY, RUN } from "../../src/protocol/status.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/** What the ACP bridge needs from the server, for every client: loop numbers, run/tool, resolvers, history, titles, rules. */

const modelEnv = (model: ScriptedModel) => ({ SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" });

async function named(ts: TestServer, name: string, project = "additions"): Promise<{ client: SpoolClient; connectionId: string }> {
  const client = await ts.client();
  const reply = await client.initialize(project, { root: ts.root, client: { name, version: "1.0" } });
  return { client, connectionId: reply.connectionId };
}

async function runStatus(client: SpoolClient, run: string, status: number) {
  await eventually(async () => (await client.call("run/get", { run })).run.status === status, 15_000, `run ${run} at ${status}`);
}

describe("loops, tool calls, resolvers and history over WebSocket", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: modelEnv(model), agent: { toolYieldMs: 60_000 } });
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });
  afterEach(() => model.reset());

  it("run/prompt answers its loop number and run/state events name the loop they are about", async () => {
    const { client: a } = await named(ts, "editor");
    const events: { event: string; loop: number | null }[] = [];
    a.on("run/state", (p) => p.run === "loops" && events.push({ event: p.event, loop: p.loop?.seq ?? null }));
    model.reply({ text: "first answer" }, { text: "second answer" });
    const created = await a.call("run/create", { alias: "loops", model: "test", prompt: "one" });
    expect(created.loop).toBe(1);
    await runStatus(a, "loops", 200);
    const second = await a.call("run/prompt", { run: "loops", prompt: "two" });
    expect(second.loop).toBe(2);
    await eventually(() => events.filter((e) => e.event === "idle").length === 2, 15_000, "two idle events");
    expect(events.filter((e) => e.event === "loop finished")).toEqual([
      { event: "loop finished", loop: 1 },
      { event: "loop finished", loop: 2 },
    ]);
    expect(events.filter((e) => e.event === "loop started").map((e) => e.loop)).toEqual([1, 2]);
    expect(events.filter((e) => e.event === "idle").map((e) => e.loop)).toEqual([null, null]);
  });

  it("a failed loop's event names that loop, not the next one", async () => {
    const { client: a } = await named(ts, "editor");
    const failed = a.next("run/state", (p) => p.run === "fails" && p.event === "loop failed", 15_000);
    model.reply({ status: 400, body: { error: { message: "bad request for this test" } } });
    await a.call("run/create", { alias: "fails", model: "test", prompt: "break" });
    expect((await failed).loop).toMatchObject({ seq: 1 });
  });

  it("run/tool follows each tool call: running, waiting on its proposal, then completed with the answer", async () => {
    const { client: a } = await named(ts, "editor");
    const tools: { id: string; tool: string; status: string; path: string | null; loop: number; result: string | null }[] = [];
    const order: string[] = [];
    a.on("run/tool", (p) => {
      if (p.run !== "tools") return;
      tools.push({ id: p.id, tool: p.tool, status: p.status, path: p.path, loop: p.loop, result: p.result });
      order.push(`tool ${p.status}`);
    });
    a.on("run/proposal", (p) => p.run === "tools" && order.push("proposal"));
    model.reply(
      { tools: [{ id: "call_echo", name: "sh", arguments: { command: "echo tool-output" } }] },
      { tools: [{ id: "call_nope", name: "nope", arguments: {} }] },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "ok" } }] },
    );
    const proposal = a.next("run/proposal", (p) => p.run === "tools", 15_000);
    await a.call("run/create", { alias: "tools", model: "test", prompt: "echo" });
    const notice = await proposal;
    expect(notice).toMatchObject({ loop: 1, toolCallId: "call_echo" });
    await a.call("run/resolve", { run: "tools", path: notice.path, decision: "accept" });
    await runStatus(a, "tools", 200);
    await eventually(() => tools.some((t) => t.id === "call_done" && t.status === "completed"));
    expect(order.slice(0, 3)).toEqual(["tool running", "proposal", "tool waiting"]);
    const echo = tools.filter((t) => t.id === "call_echo");
    expect(echo.map((t) => t.status)).toEqual(["running", "waiting", "completed"]);
    expect(echo[1]).toMatchObject({ tool: "sh", path: notice.path, loop: 1 });
    expect(echo[2]!.result).toContain("tool-output");
    expect(echo[2]!.path).toBe(notice.path);
    expect(tools.filter((t) => t.id === "call_nope").map((t) => t.status)).toEqual(["running", "failed"]);
    expect(tools.find((t) => t.id === "call_nope" && t.status === "failed")!.result).toContain('unknown tool "nope"');
  });

  it("run/resolved names the deciding connection and its client, or run/abort", async () => {
    const { client: a } = await named(ts, "editor");
    const { client: b, connectionId: bId } = await named(ts, "phone");
    await a.call("run/create", { alias: "who" });
    const first = await a.call("proposal/create", { run: "who", tool: "sh", command: "echo accepted" });
    const resolved = a.next("run/resolved", (p) => p.path === first.path);
    await b.call("run/resolve", { run: "who", path: first.path, decision: "reject", reason: "not now" });
    expect(await resolved).toMatchObject({
      decision: "reject",
      resolvedBy: "admin via phone",
      reason: "not now",
      resolver: { kind: "connection", connectionId: bId, client: "phone", rule: null },
      loop: null,
      toolCallId: null,
    });

    model.reply({ tools: [{ id: "call_wait", name: "sh", arguments: { command: "echo never" } }] });
    const proposal = a.next("run/proposal", (p) => p.run === "aborted", 15_000);
    await a.call("run/create", { alias: "aborted", model: "test", prompt: "x" });
    const pending = await proposal;
    const byAbort = a.next("run/resolved", (p) => p.path === pending.path && p.run === "aborted");
    await b.call("run/abort", { run: "aborted", reason: "stop" });
    expect(await byAbort).toMatchObject({ decision: "reject", resolver: { kind: "abort", connectionId: null }, loop: 1, toolCallId: "call_wait" });
  });

  it("an always-allow rule accepts later identical proposals itself; other commands, directories or environments still ask", async () => {
    const { client: a } = await named(ts, "editor");
    await a.call("run/create", { alias: "rules" });
    const first = await a.call("proposal/create", { run: "rules", tool: "sh", command: "echo same", env: { B: "2", A: "1" } });
    const accepted = await a.call("run/resolve", { run: "rules", path: first.path, decision: "accept", always: true });
    expect(accepted.rule).toEqual(expect.any(Number));

    const proposals: string[] = [];
    a.on("run/proposal", (p) => p.run === "rules" && proposals.push(p.path));
    const byRule = a.next("run/resolved", (p) => p.run === "rules" && p.resolver.kind === "rule");
    // Same command and environment (keys in another order): the server accepts it.
    const again = await a.call("proposal/create", { run: "rules", tool: "sh", command: "echo same", env: { A: "1", B: "2" } });
    const notice = await byRule;
    expect(notice).toMatchObject({ path: again.path, decision: "accept", resolver: { kind: "rule", rule: accepted.rule, client: "admin via editor" } });
    expect(notice.resolvedBy).toContain(`rule #${accepted.rule}`);
    expect((await a.call("entry/get", { run: "rules", path: again.path })).status).toBe(ENTRY.done);

    // Another env, another cwd, another tool: each one waits for a person.
    const otherEnv = await a.call("proposal/create", { run: "rules", tool: "sh", command: "echo same", env: { A: "1" } });
    const otherCwd = await a.call("proposal/create", { run: "rules", tool: "sh", command: "echo same", cwd: "sub", env: { A: "1", B: "2" } });
    const otherTool = await a.call("proposal/create", { run: "rules", tool: "env", command: "echo same", env: { A: "1", B: "2" } });
    for (const { path } of [otherEnv, otherCwd, otherTool]) {
      expect((await a.call("entry/get", { run: "rules", path })).status).toBe(ENTRY.proposed);
    }
    await eventually(() => proposals.length === 3);
    expect(proposals).toEqual([otherEnv.path, otherCwd.path, otherTool.path]);

    // Rules belong to their run.
    await a.call("run/create", { alias: "rules-other" });
    const elsewhere = await a.call("proposal/create", { run: "rules-other", tool: "sh", command: "echo same", env: { A: "1", B: "2" } });
    expect((await a.call("entry/get", { run: "rules-other", path: elsewhere.path })).status).toBe(ENTRY.proposed);
  });

  it("always with reject is refused and changes nothing", async () => {
    const { client: a } = await named(ts, "editor");
    await a.call("run/create", { alias: "bad-always" });
    const { path } = await a.call("proposal/create", { run: "bad-always", tool: "sh", command: "echo x" });
    await expect(a.call("run/resolve", { run: "bad-always", path, decision: "reject", always: true })).rejects.toMatchObject({
      data: { code: "INVALID_PARAMS" },
    });
    await expect(a.request("run/resolve", { run: "bad-always", path, decision: "accept", always: "yes" })).rejects.toMatchObject({
      data: { code: "INVALID_PARAMS" },
    });
    expect((await a.call("entry/get", { run: "bad-always", path })).status).toBe(ENTRY.proposed);
    // No rule was stored: the same command proposed again still waits.
    const again = await a.call("proposal/create", { run: "bad-always", tool: "sh", command: "echo x" });
    expect((await a.call("entry/get", { run: "bad-always", path: again.path })).status).toBe(ENTRY.proposed);
  });

  it("a model's proposal matching a rule runs without asking, and the model gets its output", async () => {
    const { client: a } = await named(ts, "editor");
    await a.call("run/create", { alias: "ruled", model: "test" });
    const seed = await a.call("proposal/create", { run: "ruled", tool: "sh", command: "echo ruled-output" });
    await a.call("run/resolve", { run: "ruled", path: seed.path, decision: "accept", always: true });
    const asked: string[] = [];
    a.on("run/proposal", (p) => p.run === "ruled" && asked.push(p.path));
    const states: number[] = [];
    a.on("run/state", (p) => p.run === "ruled" && states.push(p.status));
    model.reply({ tools: [{ id: "call_ruled", name: "sh", arguments: { command: "echo ruled-output" } }] }, { text: "done" });
    await a.call("run/prompt", { run: "ruled", prompt: "run it" });
    await model.received(2);
    await runStatus(a, "ruled", 200);
    expect(toolResult(model.requests[1]!, "call_ruled")).toContain("ruled-output");
    expect(asked).toEqual([]);
    expect(states).not.toContain(202);
  });

  it("run/history pages through prompts, text, tool calls with their producers, and answers", async () => {
    const { client: a } = await named(ts, "editor");
    model.reply({ text: "Looking. ", tools: [{ id: "call_hist", name: "sh", arguments: { command: "echo hist; exit 4" } }] }, { text: "It exits 4." });
    const proposal = a.next("run/proposal", (p) => p.run === "hist", 15_000);
    await a.call("run/create", { alias: "hist", model: "test", prompt: "What does it do?\nsecond line" });
    await a.call("run/resolve", { run: "hist", path: (await proposal).path, decision: "accept" });
    await runStatus(a, "hist", 200);
    const { messages, next } = await a.request("run/history", { run: "hist" });
    expect(next).toBeNull();
    expect(messages.map((m: { role: string }) => m.role)).toEqual(["user", "assistant", "tool", "assistant"]);
    expect(messages[0]).toMatchObject({ loop: 1, text: "What does it do?\nsecond line", note: false, toolCalls: [] });
    expect(messages[1]).toMatchObject({
      text: "Looking. ",
      toolCalls: [{ id: "call_hist", tool: "sh", arguments: { command: "echo hist; exit 4" }, status: ENTRY.failed, exitCode: 4 }],
    });
    expect(messages[1].toolCalls[0].path).toMatch(/^log:\/\/turn_1\/sh\//);
    expect(messages[2]).toMatchObject({ toolCallId: "call_hist" });
    expect(messages[2].text).toContain("exit code: 4");
    expect(messages[3]).toMatchObject({ text: "It exits 4.", loop: 1 });

    const page = await a.call("run/history", { run: "hist", limit: 2 });
    expect(page.next).toEqual(expect.any(Number));
    const rest = await a.request("run/history", { run: "hist", after: page.next });
    expect([...page.messages, ...rest.messages].map((m: { id: number }) => m.id)).toEqual(messages.map((m: { id: number }) => m.id));
  });

  it("run/history refuses bad input", async () => {
    const { client: a } = await named(ts, "editor");
    await expect(a.call("run/history", { run: "missing" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await a.call("run/create", { alias: "hist-bad" });
    for (const params of [{}, { run: "hist-bad", limit: 0 }, { run: "hist-bad", after: -1 }, { run: "hist-bad", extra: 1 }, { run: "hist-bad", limit: "5" }]) {
      await expect(a.request("run/history", params)).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    }
    expect((await a.call("run/history", { run: "hist-bad" })).messages).toEqual([]);
  });

  it("runs get a title: given at run/create, else the first line of the first prompt", async () => {
    const { client: a } = await named(ts, "editor");
    model.reply({ text: "a" }, { text: "b" });
    await a.call("run/create", { alias: "titled", model: "test", prompt: "\n  Fix the flaky test in ci  \nwith details", title: undefined });
    await a.call("run/create", { alias: "given", title: "Given title" });
    await runStatus(a, "titled", 200);
    await a.call("run/prompt", { run: "titled", prompt: "a later prompt does not rename it" });
    expect((await a.call("run/get", { run: "titled" })).run.title).toBe("Fix the flaky test in ci");
    expect((await a.call("run/get", { run: "given" })).run.title).toBe("Given title");
    const { runs } = await a.request("run/list", {});
    expect(runs.find((r: { alias: string }) => r.alias === "given").title).toBe("Given title");
    await expect(a.call("run/create", { alias: "empty-title", title: "" })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    await expect(a.call("run/get", { run: "empty-title" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
  });

  it("run/prompt can switch the run's model; an unknown one is refused and changes nothing", async () => {
    const { client: a } = await named(ts, "editor");
    await a.call("run/create", { alias: "switch" });
    await expect(a.call("run/prompt", { run: "switch", prompt: "x", model: "nope" })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    expect((await a.call("run/get", { run: "switch" })).run).toMatchObject({ model: null, status: RUN.done });
    model.reply({ text: "switched" });
    const reply = await a.call("run/prompt", { run: "switch", prompt: "x", model: "test" });
    expect(reply).toMatchObject({ loop: 1, run: { model: "test" } });
    await runStatus(a, "switch", 200);
  });

  it("a prompt after an abort answers the calls the aborted loop left open, so the model server sees a well-formed history", async () => {
    const { client: a } = await named(ts, "editor");
    model.reply({ tools: [{ id: "call_left", name: "sh", arguments: { command: "echo left" } }] }, { text: "fine" });
    const proposal = a.next("run/proposal", (p) => p.run === "reprompt", 15_000);
    await a.call("run/create", { alias: "reprompt", model: "test", prompt: "first" });
    await proposal;
    await a.call("run/abort", { run: "reprompt" });
    const second = await a.call("run/prompt", { run: "reprompt", prompt: "second" });
    expect(second.loop).toBe(2);
    await model.received(2);
    await runStatus(a, "reprompt", 200);
    const messages = model.requests[1]!.messages;
    const answer = messages.findIndex((m) => m.role === "tool" && m.tool_call_id === "call_left");
    expect(answer).toBeGreaterThan(0);
    expect(messages[answer]!.content).toContain("aborted");
    expect(messages.at(-1)).toMatchObject({ role: "user", content: "second" });
  });
});

describe("rules across a restart", () => {
  it("a rule stored before a restart still accepts identical proposals after it", async () => {
    const home = tempDir();
    try {
      const first = await startTestServer({ home });
      const { client: a } = await named(first, "editor", "restart-rules");
      await a.call("run/create", { alias: "kept" });
      const seed = await a.call("proposal/create", { run: "kept", tool: "sh", command: "echo kept" });
      await a.call("run/resolve", { run: "kept", path: seed.path, decision: "accept", always: true });
      await first.stop();
      const second = await startTestServer({ home });
      try {
        const { client: b } = await named(second, "other", "restart-rules");
        const again = await b.call("proposal/create", { run: "kept", tool: "sh", command: "echo kept" });
        // The facts the rule holds are the ones shown again (the restarted embedded runner's sandbox and network probed alike).
        const facts = async (path: string) => {
          const { producer } = await b.call("entry/get", { run: "kept", path });
          return { sandbox: producer?.sandbox, network: producer?.network, cwd: producer?.cwd, runner: producer?.defaultRunner };
        };
        expect(await facts(again.path)).toEqual(await facts(seed.path));
        expect((await b.call("entry/get", { run: "kept", path: again.path })).status).toBe(ENTRY.done);
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
