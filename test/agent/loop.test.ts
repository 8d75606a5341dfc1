import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY, RUN } from "../../src/protocol/status.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

const modelEnv = (model: ScriptedModel) => ({ SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" });

async function runStatus(client: SpoolClient, run: string, status: number, timeoutMs = 15_000) {
  await eventually(async () => (await client.call("run/get", { run })).run.status === status, timeoutMs, `run ${run} at ${status}`);
}

/** Waits for the proposal the model made in `run` and returns its notice. */
function nextProposal(client: SpoolClient, run: string) {
  return client.next("run/proposal", (p) => p.run === run, 15_000);
}

describe("the agent loop against a scripted OpenAI-compatible server", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    // Commands here finish long before this even on a busy machine; the yield running out has its own test below.
    ts = await startTestServer({ env: modelEnv(model), agent: { toolYieldMs: 60_000 } });
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });
  afterEach(() => {
    model.requests.length = 0;
  });

  it("lists models and refuses an unknown alias at run/create", async () => {
    const a = await ts.clientIn("agent");
    expect((await a.call("model/list", {})).models).toEqual([{ alias: "test", provider: "openai", model: "test-model", baseUrl: model.baseUrl }]);
    await expect(a.call("run/create", { model: "nope", prompt: "hi" })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS", model: "nope" } });
    await expect(a.call("run/create", { prompt: "hi" })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    expect((await a.call("run/list", {})).runs).toEqual([]);
  });

  it("model proposes sh, a second client accepts, the local runner runs it, the next request carries exit code and cleaned output", async () => {
    const a = await ts.clientIn("agent");
    const b = await ts.clientIn("agent");
    model.reply(
      { text: "Let me look. ", tools: [{ id: "call_ls", name: "sh", arguments: { command: "printf '\\033[32mgreen\\033[0m\\n'; echo oops >&2; exit 3" } }] },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "Ran it; it exits 3." } }] },
    );
    const states: { status: number; event: string; tool?: string }[] = [];
    b.on("run/state", (p) => p.run === "r1" && states.push({ status: p.status, event: p.event, ...(p.tool ? { tool: String(p.tool) } : {}) }));
    const proposal = nextProposal(b, "r1");
    const { run } = await a.call("run/create", { alias: "r1", model: "test", prompt: "What does the script do?" });
    expect(run.model).toBe("test");
    const notice = await proposal;
    expect(notice.tool).toBe("sh");
    await runStatus(a, "r1", 202);
    const resolved = await b.call("run/resolve", { run: "r1", path: notice.path, decision: "accept" });
    expect(resolved.runner).toBe("local");
    await runStatus(a, "r1", 200);
    expect(model.requests).toHaveLength(2);
    const first = model.requests[0]!;
    expect(first.model).toBe("test-model");
    expect(first.stream).toBe(true);
    expect(first.tools.map((t) => t.function.name)).toEqual(["sh", "env", "get", "grep", "wait", "jobs", "write", "kill", "done"]);
    expect(first.messages.at(-1)).toMatchObject({ role: "user", content: "What does the script do?" });
    const result = toolResult(model.requests[1]!, "call_ls")!;
    expect(result).toContain("status: failed");
    // The state in words: no HTTP-like number reaches the model (issue 38).
    expect(result).not.toMatch(/status:? \d/);
    expect(result).toContain("exit code: 3");
    expect(result).toContain("green");
    expect(result).not.toContain("\u001b[");
    expect(result).toContain("oops");
    const after = await a.call("run/get", { run: "r1" });
    expect(after.run.status).toBe(RUN.done);
    await eventually(() => states.at(-1)?.event === "idle");
    expect(states).toEqual([
      { status: RUN.done, event: "created" },
      { status: RUN.queued, event: "prompt queued" },
      { status: RUN.running, event: "loop started" },
      { status: RUN.running, event: "model replied" },
      { status: RUN.waiting, event: "waiting on a proposal", tool: "sh" },
      { status: RUN.running, event: "tool call", tool: "sh" },
      { status: RUN.running, event: "model replied" },
      { status: RUN.running, event: "tool call", tool: "done" },
      { status: RUN.running, event: "loop finished" },
      { status: RUN.done, event: "idle" },
    ]);
  });

  it("a rejected proposal is reported to the model with the reason", async () => {
    const a = await ts.clientIn("agent");
    model.reply({ tools: [{ id: "call_rm", name: "sh", arguments: { command: "rm -rf build" } }] }, { text: "Understood, I will not delete it." });
    const proposal = nextProposal(a, "r2");
    await a.call("run/create", { alias: "r2", model: "test", prompt: "clean up" });
    const notice = await proposal;
    await a.call("run/resolve", { run: "r2", path: notice.path, decision: "reject", reason: "keep the build" });
    await runStatus(a, "r2", 200);
    const result = toolResult(model.requests[1]!, "call_rm")!;
    expect(result).toContain("status: rejected");
    expect(result).not.toContain("403");
    expect(result).toContain("keep the build");
  });

  it("run/abort while a command streams kills it and ends the run 499", async () => {
    const a = await ts.clientIn("agent");
    model.reply({ tools: [{ id: "call_loop", name: "sh", arguments: { command: "while true; do echo tick; sleep 0.05; done" } }] });
    const proposal = nextProposal(a, "r3");
    await a.call("run/create", { alias: "r3", model: "test", prompt: "watch" });
    const notice = await proposal;
    const { channels } = await a.request("run/resolve", { run: "r3", path: notice.path, decision: "accept" });
    let pid: number | undefined;
    await eventually(async () => Boolean((pid = (await a.request("entry/get", { run: "r3", path: notice.path })).attributes.process?.pid)));
    await eventually(async () => (await a.request("entry/get", { run: "r3", path: channels[0].path })).bytes > 0);
    const aborted = await a.request("run/abort", { run: "r3", reason: "enough" });
    expect(aborted.run.status).toBe(RUN.aborted);
    expect(aborted.cancelled).toEqual([notice.path]);
    await eventually(
      () => {
        try {
          process.kill(pid!, 0);
          return false;
        } catch {
          return true;
        }
      },
      5_000,
      "the process to be killed",
    );
    expect((await a.request("entry/get", { run: "r3", path: channels[0].path })).status).toBe(ENTRY.cancelled);
    await expect(a.call("run/abort", { run: "r3" })).rejects.toMatchObject({ data: { code: "CONFLICT" } });
    expect(model.requests).toHaveLength(1); // the model is not called again
  });

  it("run/abort while waiting on a proposal rejects it and the run stays stopped", async () => {
    const a = await ts.clientIn("agent");
    model.reply({ tools: [{ id: "call_wait_abort", name: "sh", arguments: { command: "make deploy" } }] });
    const proposal = nextProposal(a, "r3b");
    await a.call("run/create", { alias: "r3b", model: "test", prompt: "deploy" });
    const notice = await proposal;
    await runStatus(a, "r3b", 202);
    const aborted = await a.call("run/abort", { run: "r3b" });
    expect(aborted).toMatchObject({ rejected: [notice.path], cancelled: [] });
    const log = await a.call("entry/get", { run: "r3b", path: notice.path });
    expect(log.status).toBe(ENTRY.rejected);
    await expect(a.call("run/resolve", { run: "r3b", path: notice.path, decision: "accept" })).rejects.toMatchObject({ data: { code: "CONFLICT" } });
    expect((await a.call("run/get", { run: "r3b" })).run.status).toBe(RUN.aborted);
  });

  it("a 20 MB output reaches the model cut to a head and a tail with a note; clients still read every byte", async () => {
    const a = await ts.clientIn("agent");
    model.reply({ tools: [{ id: "call_big", name: "sh", arguments: { command: "seq 1 2600000" } }] }, { text: "Big." });
    const proposal = nextProposal(a, "r4");
    await a.call("run/create", { alias: "r4", model: "test", prompt: "count" });
    const notice = await proposal;
    const { channels } = await a.request("run/resolve", { run: "r4", path: notice.path, decision: "accept" });
    await runStatus(a, "r4", 200, 30_000);
    const result = toolResult(model.requests[1]!, "call_big")!;
    expect(result.length).toBeLessThan(20_000);
    expect(result).toMatch(/^1\n2\n3\n/m);
    expect(result).toContain("2600000");
    expect(result).toMatch(
      /\[… [\d]+ lines \(about \d+ bytes\) of sh:\/\/turn_1\/seq-1-2600000_1 left out \(2600000 lines in all\); read them with the get tool: \{"path": "sh:\/\/turn_1\/seq-1-2600000_1", "line": \d+, "limit": 200\} …\]/,
    );
    const stored = await a.request("entry/get", { run: "r4", path: channels[0].path, tail: 1 });
    expect(stored.bytes).toBeGreaterThan(18_000_000);
    expect(stored.body).toBe("2600000\n");
  }, 60_000);

  it("colourful progress bars reach the model as their final state", async () => {
    const a = await ts.clientIn("agent");
    const command = "for p in 10 50 100; do printf '\\r\\033[1;34m[%3d%%]\\033[0m downloading' $p; done; printf '\\n\\033[31mdone\\033[0m\\n'";
    model.reply({ tools: [{ id: "call_bar", name: "sh", arguments: { command } }] }, { text: "ok" });
    const proposal = nextProposal(a, "r5");
    await a.call("run/create", { alias: "r5", model: "test", prompt: "download" });
    const notice = await proposal;
    await a.call("run/resolve", { run: "r5", path: notice.path, decision: "accept" });
    await runStatus(a, "r5", 200);
    const result = toolResult(model.requests[1]!, "call_bar")!;
    expect(result).toContain("[100%] downloading\ndone");
    expect(result).not.toContain("[ 10%]");
    expect(result).not.toContain("\u001b");
    expect(result).not.toContain("\r");
  });

  it("the model's streamed text reaches a watching client as run/progress", async () => {
    const a = await ts.clientIn("agent");
    const watcher = await ts.clientIn("agent");
    const deltas: string[] = [];
    watcher.on("run/progress", (p) => p.run === "r6" && deltas.push(p.delta));
    model.reply({ text: "Hello there, this streams word by word.", delayMs: 10 });
    await a.call("run/create", { alias: "r6", model: "test", prompt: "say hello" });
    await runStatus(a, "r6", 200);
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.join("")).toBe("Hello there, this streams word by word.");
  });

  it("prompts queue FIFO per run, and ask mode offers only read-only tools", async () => {
    const a = await ts.clientIn("agent");
    model.reply({ text: "first answer", delayMs: 20 }, { text: "second answer" });
    await a.call("run/create", { alias: "r7", model: "test", prompt: "one", mode: "ask" });
    const queued = await a.call("run/prompt", { run: "r7", prompt: "two" });
    expect(queued.queued).toBeGreaterThanOrEqual(1);
    await runStatus(a, "r7", 200);
    await eventually(() => model.requests.length === 2);
    expect(model.requests.map((r) => r.messages.filter((m) => m.role === "user").at(-1)!.content)).toEqual(["one", "two"]);
    expect(model.requests[0]!.tools.map((t) => t.function.name)).toEqual(["env", "get", "grep", "wait", "jobs", "done"]);
    await expect(a.call("run/prompt", { run: "r7", prompt: "" })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    await a.call("run/create", { alias: "idle" });
    await expect(a.call("run/prompt", { run: "idle", prompt: "x" })).rejects.toMatchObject({ data: { code: "UNSUPPORTED" } });
  });

  it("retries 429 and 5xx; a context-length refusal ends the loop with an error entry", async () => {
    const a = await ts.clientIn("agent");
    model.reply(
      { status: 429, body: { error: { message: "slow down" } }, headers: { "retry-after": "0" } },
      { status: 503, body: "busy" },
      { text: "made it" },
    );
    await a.call("run/create", { alias: "r8", model: "test", prompt: "retry please" });
    await runStatus(a, "r8", 200, 20_000);
    expect(model.requests).toHaveLength(3);
    model.requests.length = 0;
    model.reply({ status: 400, body: { error: { message: "This model's maximum context length is 8192 tokens", code: "context_length_exceeded" } } });
    await a.call("run/create", { alias: "r9", model: "test", prompt: "too long" });
    await runStatus(a, "r9", 500);
    expect(model.requests).toHaveLength(1); // no retry loop
    const { entries } = await a.request("entry/list", { run: "r9", pattern: "error://*" });
    expect(entries).toHaveLength(1);
    const error = await a.request("entry/get", { run: "r9", path: entries[0].path });
    expect(error.body).toMatch(/longer than the model's context/);
  }, 30_000);
});

describe("the agent loop across a restart", () => {
  it("a run waiting on a proposal continues when it is accepted after the server restarted", async () => {
    const model = await ScriptedModel.start();
    const home = tempDir();
    const env = modelEnv(model);
    model.reply({ tools: [{ id: "call_echo", name: "sh", arguments: { command: "echo after-restart" } }] });
    const first = await startTestServer({ home, env });
    const a = await first.clientIn("restart");
    const proposal = nextProposal(a, "rr");
    await a.call("run/create", { alias: "rr", model: "test", prompt: "echo something" });
    const notice = await proposal;
    await runStatus(a, "rr", 202);
    await first.stop();

    model.reply({ tools: [{ id: "call_done", name: "done", arguments: { summary: "echoed" } }] });
    const second = await startTestServer({ home, env });
    try {
      const b = await second.clientIn("restart");
      expect((await b.call("run/get", { run: "rr" })).run.status).toBe(RUN.waiting);
      await b.call("run/resolve", { run: "rr", path: notice.path, decision: "accept" });
      await runStatus(b, "rr", 200);
      expect(toolResult(model.requests[1]!, "call_echo")).toContain("after-restart");
    } finally {
      await second.stop();
      await model.close();
    }
  }, 30_000);
});

describe("the tool yield", () => {
  it("a command still running after SPOOL_TOOL_YIELD_MS reaches the model at 102 with its output so far; wait and get read the rest", async () => {
    const model = await ScriptedModel.start();
    const ts = await startTestServer({ env: { ...modelEnv(model), SPOOL_TOOL_YIELD_MS: "300" } });
    try {
      const a = await ts.clientIn("yield");
      let log = "";
      model.reply(
        { tools: [{ id: "call_slow", name: "sh", arguments: { command: "echo partial; sleep 1.5; echo end" } }] },
        (request) => {
          log = /log: (\S+)/.exec(toolResult(request, "call_slow")!)![1]!;
          return { tools: [{ id: "call_wait", name: "wait", arguments: { path: log, timeout_ms: 10_000 } }] };
        },
        () => ({ tools: [{ id: "call_get", name: "get", arguments: { path: "sh://turn_1/echo-partial-sleep-1-5-echo-end_1", tail: 1 } }] }),
        { tools: [{ id: "call_done", name: "done", arguments: { summary: "saw it end" } }] },
      );
      const proposal = nextProposal(a, "y1");
      await a.call("run/create", { alias: "y1", model: "test", prompt: "slow one" });
      await a.call("run/resolve", { run: "y1", path: (await proposal).path, decision: "accept" });
      await runStatus(a, "y1", 200);
      const first = toolResult(model.requests[1]!, "call_slow")!;
      expect(first).toContain("status: still running (use wait or get for more)");
      expect(first).toContain("partial");
      expect(first).not.toMatch(/^end$/m);
      const waited = toolResult(model.requests[2]!, "call_wait")!;
      expect(waited).toContain("status: done");
      expect(waited).toContain("exit code: 0");
      expect(waited).toContain("partial\nend");
      expect(toolResult(model.requests[3]!, "call_get")).toMatch(/lines 2-2 of 2 \(done\)\nend/);
      expect((await a.call("run/get", { run: "y1" })).run.turn).toBe(4);
    } finally {
      await ts.stop();
      await model.close();
    }
  }, 30_000);
});
