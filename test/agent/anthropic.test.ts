import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { RUN } from "../../src/protocol/status.js";
import { AnthropicStandIn, type MessagesRequest } from "../helpers/anthropic-standin.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

const KEY = "sk-ant-standin-0123456789-secret";

async function runStatus(client: SpoolClient, run: string, status: number, timeoutMs = 20_000) {
  await eventually(async () => (await client.call("run/get", { run })).run.status === status, timeoutMs, `run ${run} at ${status}`);
}

type Block = { type: string } & Record<string, unknown>;
const blocks = (m: MessagesRequest["messages"][number]): Block[] =>
  typeof m.content === "string" ? [{ type: "text", text: m.content }] : (m.content as Block[]);

describe("a run on anthropic/… against a stand-in Messages API", () => {
  let api: AnthropicStandIn;
  let ts: TestServer;
  beforeAll(async () => {
    api = await AnthropicStandIn.launch();
    ts = await startTestServer({
      env: { SPOOL_MODEL_CLAUDE: "anthropic/claude-standin", ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: api.origin },
      agent: { toolYieldMs: 60_000 },
    });
  });
  afterAll(async () => {
    await ts.stop();
    await api.close();
  });
  afterEach(() => api.reset());

  it("proposes the command whose input came in input_json_delta pieces, answers its tool_use id with a tool_result, sends the thinking block back, and ends", async () => {
    const a = await ts.clientIn("claude");
    api.answer(
      {
        thinking: { text: "The person wants a greeting printed.", signature: "sig-EqQBCgIYAhIM" },
        text: "I will print it. ",
        tools: [{ id: "toolu_01A", name: "sh", input: { command: "echo hello-from-claude" }, pieces: 5 }],
      },
      { text: "It printed hello-from-claude.", usage: { input_tokens: 40, output_tokens: 9, cache_read_input_tokens: 900, cache_creation_input_tokens: 100 } },
    );
    const proposal = a.next("run/proposal", (p) => p.run === "c1", 20_000);
    await a.call("run/create", { alias: "c1", model: "claude", prompt: "Print a greeting" });
    const notice = await proposal;
    expect(notice.command).toBe("echo hello-from-claude");
    expect(notice.toolCallId).toBe("toolu_01A");
    await a.call("run/resolve", { run: "c1", path: notice.path, decision: "accept" });
    await runStatus(a, "c1", RUN.done);
    expect(api.requests).toHaveLength(2);
    const [first, second] = api.requests;
    for (const r of [first!, second!]) {
      expect(r.headers["x-api-key"]).toBe(KEY);
      expect(r.headers["anthropic-version"]).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(r.headers.authorization).toBeUndefined();
      expect(r.body.stream).toBe(true);
      expect(r.body.model).toBe("claude-standin");
    }
    // Prompt caching: the system prompt, the last tool and the latest user turn are breakpoints.
    expect(first!.body.system!.at(-1)!.cache_control).toEqual({ type: "ephemeral" });
    expect(first!.body.tools!.at(-1)!.cache_control).toEqual({ type: "ephemeral" });
    expect(first!.body.tools!.slice(0, -1).every((t) => t.cache_control === undefined)).toBe(true);
    expect(blocks(first!.body.messages.at(-1)!).at(-1)!.cache_control).toEqual({ type: "ephemeral" });
    // The reply goes back whole: the signed thinking block first, then the text and the tool_use with its input.
    const messages = second!.body.messages;
    const reply = messages.find((m) => m.role === "assistant")!;
    expect(blocks(reply)).toEqual([
      { type: "thinking", thinking: "The person wants a greeting printed.", signature: "sig-EqQBCgIYAhIM" },
      { type: "text", text: "I will print it. " },
      { type: "tool_use", id: "toolu_01A", name: "sh", input: { command: "echo hello-from-claude" } },
    ]);
    const results = blocks(messages.at(-1)!).filter((b) => b.type === "tool_result");
    expect(results).toHaveLength(1);
    expect(results[0]!.tool_use_id).toBe("toolu_01A");
    expect(String(results[0]!.content)).toContain("hello-from-claude");
    expect(results[0]!.cache_control).toEqual({ type: "ephemeral" });
    const { usage } = await a.call("run/get", { run: "c1" });
    expect(usage.turns.at(-1)).toMatchObject({ promptTokens: 1040, completionTokens: 9, cacheReadTokens: 900, cacheWriteTokens: 100 });
  });

  it("529 overloaded and 429 with retry-after are retried, each retry announced; an overloaded error inside the stream too", async () => {
    const a = await ts.clientIn("claude");
    const retries: string[] = [];
    a.on("run/state", (p) => p.run === "c2" && p.event === "model retry" && retries.push(String(p.reason)));
    api.answer(
      { status: 529, type: "overloaded_error", message: "Overloaded", headers: { "retry-after": "0" } },
      { status: 429, type: "rate_limit_error", message: "Number of request tokens has exceeded your per-minute rate limit", headers: { "retry-after": "0" } },
      (_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end(`event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })}\n\n`);
      },
      { text: "Here after all." },
    );
    await a.call("run/create", { alias: "c2", model: "claude", prompt: "Say something" });
    await runStatus(a, "c2", RUN.done);
    expect(api.requests).toHaveLength(4);
    await eventually(() => retries.length === 3);
    expect(retries[0]).toMatch(/HTTP 529: Overloaded \(overloaded_error\)/);
    expect(retries[1]).toMatch(/HTTP 429: .*rate limit/);
    expect(retries[2]).toMatch(/overloaded_error/);
  });

  it('"prompt is too long" (HTTP 400 invalid_request_error) compacts the conversation through the Messages API and asks again; the run goes on', async () => {
    const a = await ts.clientIn("claude");
    const compactions: string[] = [];
    a.on("run/compaction", (p) => p.run === "c4" && compactions.push(`${p.phase}${p.reason ? `/${p.reason}` : ""}`));
    api.answer(
      { text: "Reading it. ", tools: [{ id: "toolu_get", name: "get", input: { path: "sh://turn_1/x" } }] },
      { status: 400, type: "invalid_request_error", message: "prompt is too long: 210000 tokens > 200000 maximum" },
      { text: "Summary: the agent read sh://turn_1/x." },
      { text: "Done reading." },
    );
    await a.call("run/create", { alias: "c4", model: "claude", prompt: "Read it" });
    await runStatus(a, "c4", RUN.done);
    expect(api.requests).toHaveLength(4);
    // The summary request carries no tools; the request after it starts from the summary.
    expect(api.requests[2]!.body.tools ?? []).toEqual([]);
    expect(JSON.stringify(api.requests[3]!.body.messages)).toContain("Summary: the agent read sh://turn_1/x.");
    await eventually(() => compactions.includes("completed/too long"), 10_000, "the compaction's completed notice");
    expect((await a.call("entry/list", { run: "c4", pattern: "error://*" })).entries).toEqual([]);
  });

  it("the key reaches no command, error entry, history or audit row", async () => {
    const a = await ts.clientIn("claude");
    const before = process.env.ANTHROPIC_API_KEY;
    process.env.ANTHROPIC_API_KEY = KEY; // were the runner to pass its own environment on, the command would see it
    try {
      api.answer(
        { tools: [{ id: "toolu_env", name: "sh", input: { command: "env; echo end-of-env" } }] },
        { status: 401, type: "authentication_error", message: "invalid x-api-key" },
      );
      const proposal = a.next("run/proposal", (p) => p.run === "c3", 20_000);
      await a.call("run/create", { alias: "c3", model: "claude", prompt: "Show the environment" });
      const notice = await proposal;
      await a.call("run/resolve", { run: "c3", path: notice.path, decision: "accept" });
      await runStatus(a, "c3", RUN.failed);
    } finally {
      if (before === undefined) delete process.env.ANTHROPIC_API_KEY;
      else process.env.ANTHROPIC_API_KEY = before;
    }
    const output = api.requests[1]!.body.messages.flatMap(blocks).find((b) => b.type === "tool_result")!;
    expect(String(output.content)).toContain("end-of-env");
    const { entries } = await a.call("entry/list", { run: "c3" });
    const bodies = await Promise.all(entries.map((e) => a.call("entry/get", { run: "c3", path: e.path })));
    const error = bodies.find((b) => b.path.startsWith("error://"))!;
    expect(error.body).toBe("anthropic/claude-standin: HTTP 401: invalid x-api-key (authentication_error)");
    const everything = JSON.stringify([
      bodies,
      await a.call("run/get", { run: "c3" }),
      await a.call("run/history", { run: "c3" }),
      await a.call("audit/list", {}),
      await a.call("model/list", {}),
    ]);
    expect(everything).not.toContain(KEY);
  });
});
