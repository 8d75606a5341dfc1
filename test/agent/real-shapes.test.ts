import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { type RecordedRequest, type Reply, ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

const modelEnv = (model: ScriptedModel) => ({ SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" });

async function runStatus(client: SpoolClient, run: string, status: number, timeoutMs = 30_000) {
  await eventually(async () => (await client.call("run/get", { run })).run.status === status, timeoutMs, `run ${run} at ${status}`);
}

async function errorEntry(client: SpoolClient, run: string): Promise<string> {
  const { entries } = await client.call("entry/list", { run, pattern: "error://*" });
  expect(entries).toHaveLength(1);
  return (await client.call("entry/get", { run, path: entries[0]!.path })).body as string;
}

/**
 * Like transformers serve or a Jinja chat template: a history whose tool
 * call arguments are not a JSON object is refused with 400.
 */
function strict(reply: Reply | ((request: RecordedRequest) => Reply)) {
  return (request: RecordedRequest): Reply => {
    for (const m of request.messages) {
      for (const call of m.tool_calls ?? []) {
        try {
          const value: unknown = JSON.parse(call.function.arguments);
          if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
        } catch {
          return { status: 400, body: { error: "tool call arguments must be a JSON object" } };
        }
      }
    }
    return typeof reply === "function" ? reply(request) : reply;
  };
}

describe("the agent loop against real model-server shapes", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({
      env: { ...modelEnv(model), SPOOL_MODEL_TEST_MAX_TOKENS: "256", SPOOL_MODEL_TIMEOUT_MS: "700" },
      agent: { toolYieldMs: 60_000 },
    });
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });
  afterEach(() => model.reset());

  it("tool calls without ids get ids unique in the run, so turn 2's done is answered and ends the loop", async () => {
    const a = await ts.clientIn("shapes");
    model.reply(
      { toolShape: "no-id", tools: [{ name: "get", arguments: { path: "sh://turn_1/nothing" } }] },
      { toolShape: "no-id", tools: [{ name: "done", arguments: { summary: "looked" } }] },
    );
    await a.call("run/create", { alias: "ids", model: "test", prompt: "look" });
    await runStatus(a, "ids", 200);
    expect(model.requests).toHaveLength(2);
    const calls = model.requests[1]!.messages.flatMap((m) => m.tool_calls ?? []);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.id).toMatch(/^call_\d+_1_0$/);
    expect(toolResult(model.requests[1]!, calls[0]!.id)).toContain('no entry "sh://turn_1/nothing"');
    const states = await a.call("entry/list", { run: "ids", pattern: "error://*" });
    expect(states.entries).toEqual([]);
  });

  it("a server that reuses the same id every turn (call_0): the later call is renamed and still answered", async () => {
    const a = await ts.clientIn("shapes");
    model.reply(
      { tools: [{ id: "call_0", name: "get", arguments: { path: "sh://turn_1/nothing" } }] },
      { tools: [{ id: "call_0", name: "get", arguments: { path: "sh://turn_2/nothing" } }] },
      { tools: [{ id: "call_0", name: "done", arguments: { summary: "three turns" } }] },
    );
    await a.call("run/create", { alias: "same-ids", model: "test", prompt: "look twice" });
    await runStatus(a, "same-ids", 200);
    expect(model.requests).toHaveLength(3);
    const ids = model.requests[2]!.messages.flatMap((m) => m.tool_calls ?? []).map((c) => c.id);
    expect(ids).toEqual(["call_0", expect.stringMatching(/^call_\d+_2_0$/)]);
    expect(model.requests[2]!.messages.filter((m) => m.role === "tool").map((m) => m.tool_call_id)).toEqual(ids);
  });

  it("tool calls without index, whole in one chunk (older Ollama), are run", async () => {
    const a = await ts.clientIn("shapes");
    model.reply(
      {
        toolShape: "whole",
        tools: [
          { name: "get", arguments: { path: "sh://turn_1/a" } },
          { name: "get", arguments: { path: "sh://turn_1/b" } },
        ],
      },
      { text: "Neither exists." },
    );
    await a.call("run/create", { alias: "ollama", model: "test", prompt: "read a and b" });
    await runStatus(a, "ollama", 200);
    const second = model.requests[1]!;
    const calls = second.messages.flatMap((m) => m.tool_calls ?? []);
    expect(calls.map((c) => c.function.arguments)).toEqual(['{"path":"sh://turn_1/a"}', '{"path":"sh://turn_1/b"}']);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    expect(toolResult(second, calls[1]!.id)).toContain('no entry "sh://turn_1/b"');
  });

  it("malformed tool arguments are answered with an error and stored so that the server accepts the next request", async () => {
    const a = await ts.clientIn("shapes");
    model.reply(
      strict({ tools: [{ id: "call_bad", name: "sh", arguments: '{"command": "ls -la' }] }),
      strict({ tools: [{ id: "call_fixed", name: "get", arguments: { path: "sh://turn_1/x" } }] }),
      strict({ tools: [{ id: "call_done", name: "done", arguments: { summary: "recovered" } }] }),
    );
    await a.call("run/create", { alias: "bad-args", model: "test", prompt: "list" });
    await runStatus(a, "bad-args", 200);
    expect(model.requests).toHaveLength(3);
    const second = model.requests[1]!;
    const bad = second.messages.flatMap((m) => m.tool_calls ?? []).find((c) => c.id === "call_bad")!;
    expect(bad.function).toEqual({ name: "sh", arguments: "{}" });
    const answer = toolResult(second, "call_bad")!;
    expect(answer).toContain("not one JSON object");
    expect(answer).toContain('They were: {"command": "ls -la');
    // Nothing was proposed for it.
    expect((await a.call("entry/list", { run: "bad-args", pattern: "log://*" })).entries).toEqual([]);
    // Spool's own bookkeeping never reaches the server.
    expect(JSON.stringify(model.requests)).not.toContain('"spool"');
  });

  it("a string error event fails the loop with the server's message and the provider's name in the error entry", async () => {
    const a = await ts.clientIn("shapes");
    model.reply({ raw: ['data: {"error": "Model test-model is not loaded"}\n\n'] });
    await a.call("run/create", { alias: "err", model: "test", prompt: "hi" });
    await runStatus(a, "err", 500);
    expect(await errorEntry(a, "err")).toBe("openai/test-model: the server reported an error: Model test-model is not loaded");
  });

  it('finish_reason "length": the cut reply is not the answer; the model is told and continues', async () => {
    const a = await ts.clientIn("shapes");
    const finished: unknown[] = [];
    a.on("run/state", (p) => p.run === "long" && p.event === "loop finished" && finished.push(p.summary));
    model.reply(
      { text: "The first part of a long", finishReason: "length" },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "whole story" } }] },
    );
    await a.call("run/create", { alias: "long", model: "test", prompt: "tell me everything" });
    await runStatus(a, "long", 200);
    expect(model.requests).toHaveLength(2);
    const messages = model.requests[1]!.messages;
    expect(messages.at(-2)).toMatchObject({ role: "assistant", content: "The first part of a long" });
    expect(messages.at(-1)).toMatchObject({ role: "user" });
    expect(messages.at(-1)!.content).toMatch(/cut off at the output token limit/);
    await eventually(() => finished.length === 1);
    expect(finished).toEqual(["whole story"]);
  });

  it('replies cut at "length" again and again end the loop as failed after a bounded number of continuations', async () => {
    const a = await ts.clientIn("shapes");
    const cut: Reply = { text: "and on and on", finishReason: "length" };
    model.reply(cut, cut, cut, cut); // a fifth request would get a plain answer and end the run 200
    await a.call("run/create", { alias: "longer", model: "test", prompt: "tell me everything" });
    await runStatus(a, "longer", 500);
    expect(model.requests).toHaveLength(4);
    expect(await errorEntry(a, "longer")).toMatch(/cut at its output token limit \(finish_reason "length"\) 4 times in a row/);
  });

  it("a connection cut mid-stream is retried; clients keep the text they saw and get it once", async () => {
    const a = await ts.clientIn("shapes");
    const watcher = await ts.clientIn("shapes");
    const deltas: string[] = [];
    const summaries: unknown[] = [];
    const retries: unknown[] = [];
    watcher.on("run/progress", (p) => p.run === "cut" && deltas.push(p.delta));
    watcher.on("run/state", (p) => {
      if (p.run !== "cut") return;
      if (p.event === "loop finished") summaries.push(p.summary);
      if (p.event === "model retry") retries.push(p.reason);
    });
    const full = "The build fails because the linker cannot find libfoo.";
    model.reply({ text: full, cutAfter: 4 }, { text: full });
    await a.call("run/create", { alias: "cut", model: "test", prompt: "why?" });
    await runStatus(a, "cut", 200);
    await eventually(() => summaries.length === 1);
    expect(deltas.join("")).toBe(full);
    expect(summaries).toEqual([full]);
    expect(retries).toEqual([expect.stringMatching(/connection was cut/)]);
    expect((await a.call("entry/list", { run: "cut", pattern: "error://*" })).entries).toEqual([]);
  });

  it("a server that never answers: the loop fails after SPOOL_MODEL_TIMEOUT_MS with an error naming the URL", async () => {
    const a = await ts.clientIn("shapes");
    model.reply({ hang: true });
    await a.call("run/create", { alias: "hang", model: "test", prompt: "hello?" });
    await runStatus(a, "hang", 500);
    expect(await errorEntry(a, "hang")).toBe(`openai/test-model: ${model.baseUrl}/chat/completions did not answer within 0.7 s (SPOOL_MODEL_TIMEOUT_MS)`);
  });

  it("usage is stored per turn and shown by run/get; max_tokens comes from SPOOL_MODEL_<ALIAS>_MAX_TOKENS", async () => {
    const a = await ts.clientIn("shapes");
    expect((await a.call("model/list", {})).models.map((m: { alias: string }) => m.alias)).toEqual(["test"]);
    model.reply(
      {
        tools: [{ id: "call_u1", name: "get", arguments: { path: "sh://turn_1/x" } }],
        usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
      },
      { text: "Done.", usage: { prompt_tokens: 150, completion_tokens: 5, total_tokens: 155 } },
    );
    await a.call("run/create", { alias: "usage", model: "test", prompt: "count" });
    await runStatus(a, "usage", 200);
    expect(model.requests.map((r) => r.max_tokens)).toEqual([256, 256]);
    const { usage } = await a.call("run/get", { run: "usage" });
    expect(usage).toEqual({
      promptTokens: 250,
      completionTokens: 25,
      totalTokens: 275,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      costUsd: 0,
      turns: [
        { turn: 1, promptTokens: 100, completionTokens: 20, totalTokens: 120, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0 },
        { turn: 2, promptTokens: 150, completionTokens: 5, totalTokens: 155, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0 },
      ],
    });
    await a.call("run/create", { alias: "no-usage" });
    expect((await a.call("run/get", { run: "no-usage" })).usage).toEqual({
      promptTokens: 0,
      completionTokens: 0,
      totalTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      costUsd: 0,
      turns: [],
    });
  });
});
