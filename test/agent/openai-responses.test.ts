import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { RUN } from "../../src/protocol/status.js";
import { ResponsesStandIn } from "../helpers/responses-standin.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";
import { sse, writeEvents } from "../helpers/standin-http.js";

const KEY = "sk-proj-standin-responses-secret";

async function runStatus(client: SpoolClient, run: string, status: number, timeoutMs = 20_000) {
  await eventually(async () => (await client.call("run/get", { run })).run.status === status, timeoutMs, `run ${run} at ${status}`);
}

describe("a run on openai-responses/… against a stand-in Responses API", () => {
  let api: ResponsesStandIn;
  let ts: TestServer;
  beforeAll(async () => {
    api = await ResponsesStandIn.launch();
    ts = await startTestServer({
      env: { SPOOL_MODEL_GPT: "openai-responses/gpt-standin", OPENAI_API_KEY: KEY, OPENAI_BASE_URL: api.baseUrl },
      agent: { toolYieldMs: 60_000 },
    });
  });
  afterAll(async () => {
    await ts.stop();
    await api.close();
  });
  afterEach(() => api.reset());

  it("proposes the call whose arguments streamed in pieces, answers its call_id with function_call_output, sends the reasoning item back, and ends", async () => {
    const a = await ts.clientIn("gpt");
    api.answer(
      {
        reasoning: { id: "rs_01", encrypted: "gAAAAB-encrypted-reasoning" },
        text: "Printing it. ",
        calls: [{ callId: "call_R1", name: "sh", arguments: { command: "echo hi-from-responses" }, pieces: 4 }],
      },
      { text: "It printed hi-from-responses.", usage: { input_tokens: 500, output_tokens: 8, cached_tokens: 400 } },
    );
    const proposal = a.next("run/proposal", (p) => p.run === "g1", 20_000);
    await a.call("run/create", { alias: "g1", model: "gpt", prompt: "Print a greeting" });
    const notice = await proposal;
    expect(notice.command).toBe("echo hi-from-responses");
    expect(notice.toolCallId).toBe("call_R1");
    await a.call("run/resolve", { run: "g1", path: notice.path, decision: "accept" });
    await runStatus(a, "g1", RUN.done);
    expect(api.requests).toHaveLength(2);
    const [first, second] = api.requests;
    for (const r of [first!, second!]) {
      expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
      expect(r.body).toMatchObject({ model: "gpt-standin", stream: true, store: false, include: ["reasoning.encrypted_content"] });
      expect(r.body.instructions).toMatch(/agent working in a software project/);
    }
    // One cache key for the whole run, so its requests share the prompt cache.
    expect(first!.body.prompt_cache_key).toMatch(/^spool-run-\d+$/);
    expect(second!.body.prompt_cache_key).toBe(first!.body.prompt_cache_key);
    expect(first!.body.tools!.map((t) => t.name)).toContain("sh");
    const input = second!.body.input;
    const at = (type: string) => input.findIndex((i) => i.type === type);
    expect(input[at("reasoning")]).toEqual({ id: "rs_01", type: "reasoning", summary: [], encrypted_content: "gAAAAB-encrypted-reasoning" });
    expect(at("reasoning")).toBeLessThan(at("function_call"));
    expect(input[at("function_call")]).toMatchObject({ call_id: "call_R1", name: "sh", arguments: '{"command":"echo hi-from-responses"}' });
    const output = input.find((i) => i.type === "function_call_output")!;
    expect(output.call_id).toBe("call_R1");
    expect(output.output).toContain("hi-from-responses");
    const { usage } = await a.call("run/get", { run: "g1" });
    expect(usage.turns.at(-1)).toMatchObject({ promptTokens: 500, completionTokens: 8, cacheReadTokens: 400 });
  });

  it("context_length_exceeded, as an HTTP 400 and as a response.failed event, compacts the conversation and asks again; the run goes on", async () => {
    const a = await ts.clientIn("gpt");
    const compactions: string[] = [];
    a.on("run/compaction", (p) => p.run === "g3" && p.phase === "completed" && compactions.push(String(p.reason)));
    const tooLong = {
      message: "Your input exceeds the context window of this model. Please adjust your input and try again.",
      code: "context_length_exceeded",
    };
    api.answer(
      { text: "Reading. ", calls: [{ callId: "call_g1", name: "get", arguments: { path: "sh://turn_1/x" } }] },
      { status: 400, body: { error: { ...tooLong, type: "invalid_request_error", param: "input" } } },
      { text: "Summary one." },
      { text: "Again. ", calls: [{ callId: "call_g2", name: "get", arguments: { path: "sh://turn_1/x" } }] },
      (_req, res) =>
        writeEvents(res, [
          sse("response.created", {
            type: "response.created",
            sequence_number: 0,
            response: { id: "r", object: "response", status: "in_progress", output: [] },
          }),
          sse("response.failed", {
            type: "response.failed",
            sequence_number: 1,
            response: { id: "r", object: "response", status: "failed", output: [], error: tooLong, incomplete_details: null },
          }),
        ]),
      { text: "Summary two." },
      { text: "Done." },
    );
    await a.call("run/create", { alias: "g3", model: "gpt", prompt: "Read it" });
    await runStatus(a, "g3", RUN.done);
    expect(api.requests).toHaveLength(7);
    expect(JSON.stringify(api.requests[3]!.body.input)).toContain("Summary one.");
    expect(JSON.stringify(api.requests[6]!.body.input)).toContain("Summary two.");
    await eventually(() => compactions.length === 2, 10_000, "two compactions");
    expect(compactions).toEqual(["too long", "too long"]);
  });

  it("429 with retry-after and a server_error event are retried; an incomplete answer at max_output_tokens is cut, and the model told", async () => {
    const a = await ts.clientIn("gpt");
    const retries: string[] = [];
    a.on("run/state", (p) => p.run === "g2" && p.event === "model retry" && retries.push(String(p.reason)));
    api.answer(
      { status: 429, body: { error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } }, headers: { "retry-after": "0" } },
      (_req, res) =>
        writeEvents(res, [
          sse("response.created", { type: "response.created", sequence_number: 0, response: { id: "r", status: "in_progress", output: [] } }),
          sse("error", { type: "error", code: "server_error", message: "The server had an error", param: null, sequence_number: 1 }),
        ]),
      { text: "Part of it", incomplete: "max_output_tokens" },
      { text: "All of it." },
    );
    await a.call("run/create", { alias: "g2", model: "gpt", prompt: "Tell me" });
    await runStatus(a, "g2", RUN.done);
    expect(api.requests).toHaveLength(4);
    await eventually(() => retries.length === 2);
    expect(retries[0]).toMatch(/HTTP 429: Rate limit reached/);
    expect(retries[1]).toMatch(/The server had an error/);
    const last = api.requests[3]!.body.input;
    expect(last.at(-2)).toEqual({ role: "assistant", content: "Part of it" });
    expect(String(last.at(-1)!.content)).toMatch(/cut off at the output token limit/);
  });
});
