import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { OpenAiCompatibleProvider } from "../../src/model/openai-compatible.js";
import { type ChatResponse, ContextLengthError, ProviderError } from "../../src/model/provider.js";
import { type Reply, ScriptedModel } from "../helpers/scripted-model.js";

const request = { model: "m", messages: [{ role: "user" as const, content: "hi" }], tools: [] };
const chunk = (delta: object, finish: string | null = null) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

describe("the OpenAI-compatible provider against real server shapes", () => {
  let model: ScriptedModel;
  beforeAll(async () => {
    model = await ScriptedModel.start();
  });
  afterAll(() => model.close());
  afterEach(() => model.reset());

  const provider = (options: { timeoutMs?: number; maxTokens?: number } = {}) =>
    new OpenAiCompatibleProvider("openai/test-model", { baseUrl: model.baseUrl, backoffMs: 10, ...options });

  async function chat(replies: Reply[], options: { timeoutMs?: number; maxTokens?: number } = {}) {
    model.reply(...replies);
    const deltas: string[] = [];
    const retries: string[] = [];
    const result = await provider(options)
      .chat(request, { signal: new AbortController().signal, onText: (d) => deltas.push(d), onRetry: (r) => retries.push(r.reason) })
      .then(
        (response): { response: ChatResponse; error?: undefined } => ({ response }),
        (error: Error) => ({ error, response: undefined }),
      );
    return { ...result, deltas, retries };
  }

  it("an error event whose error is a plain string reaches the caller with the provider's name", async () => {
    const { error } = await chat([{ raw: [chunk({ content: "Hi" }), 'data: {"error": "CUDA out of memory"}\n\n'] }]);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error!.message).toBe("openai/test-model: the server reported an error: CUDA out of memory");
  });

  it("an error object {message, type, code}, a vLLM error chunk and an `event: error` with plain text", async () => {
    const object = await chat([{ raw: ['data: {"error": {"message": "bad tool schema", "type": "invalid_request_error", "code": 400}}\n\n'] }]);
    expect(object.error!.message).toContain("bad tool schema (invalid_request_error, 400)");
    const vllm = await chat([{ raw: ['data: {"object": "error", "message": "model overloaded", "type": "ServiceUnavailable", "code": 503}\n\n'] }]);
    expect(vllm.error!.message).toContain("model overloaded (ServiceUnavailable, 503)");
    const plain = await chat([{ raw: ["event: error\ndata: the worker crashed\n\n"] }]);
    expect(plain.error!.message).toBe("openai/test-model: the server reported an error: the worker crashed");
  });

  it("a multi-line error event: several data lines, or a message printed with raw newlines", async () => {
    const lines = await chat([
      { raw: ['data: {"error": "Traceback (most recent call last):\n', 'data:   File \\"serve.py\\", line 3\n', 'data: ValueError: bad"}\n\n'] },
    ]);
    expect(lines.error).toBeInstanceOf(ProviderError);
    expect(lines.error!.message).toContain('Traceback (most recent call last):\n  File "serve.py", line 3\nValueError: bad');
    const raw = await chat([{ raw: ['data: {"error": "Traceback:\n  line 1\nKeyError: \'tools\'"}\n\n'] }]);
    expect(raw.error!.message).toContain("Traceback:\n  line 1\nKeyError: 'tools'");
    expect(raw.error!.message).not.toMatch(/Unterminated|JSON/);
  });

  it("a context-length error in the stream is a ContextLengthError", async () => {
    const { error } = await chat([{ raw: ['data: {"error": "This model\'s maximum context length is 4096 tokens"}\n\n'] }]);
    expect(error).toBeInstanceOf(ContextLengthError);
  });

  it("tool calls without index (ids only), arguments split across chunks", async () => {
    const { response } = await chat([
      {
        toolShape: "no-index",
        tools: [
          { id: "a", name: "get", arguments: { path: "sh://turn_1/x_1", tail: 5 } },
          { id: "b", name: "done", arguments: { summary: "ok" } },
        ],
      },
    ]);
    expect(response!.toolCalls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)])).toEqual([
      ["a", "get", { path: "sh://turn_1/x_1", tail: 5 }],
      ["b", "done", { summary: "ok" }],
    ]);
  });

  it("tool calls as older Ollama sends them: whole, no index, no id, arguments an object", async () => {
    const ollama = await chat([
      {
        raw: [
          chunk({
            tool_calls: [{ function: { name: "env", arguments: { command: "ls" } } }, { function: { name: "done", arguments: { summary: "listed" } } }],
          }),
          chunk({}, "stop"),
          "data: [DONE]\n\n",
        ],
      },
    ]);
    expect(ollama.response!.toolCalls).toEqual([
      { id: "", type: "function", function: { name: "env", arguments: '{"command":"ls"}' } },
      { id: "", type: "function", function: { name: "done", arguments: '{"summary":"listed"}' } },
    ]);
    const noId = await chat([{ toolShape: "no-id", tools: [{ name: "done", arguments: { summary: "x" } }] }]);
    expect(noId.response!.toolCalls).toEqual([{ id: "", type: "function", function: { name: "done", arguments: '{"summary":"x"}' } }]);
  });

  it("calls that all say index 0 but carry their own ids stay apart", async () => {
    const { response } = await chat([
      {
        raw: [
          chunk({ tool_calls: [{ index: 0, id: "x1", function: { name: "get", arguments: '{"path":"a"}' } }] }),
          chunk({ tool_calls: [{ index: 0, id: "x2", function: { name: "get", arguments: '{"path":"b"}' } }] }),
          chunk({}, "tool_calls"),
        ],
      },
    ]);
    expect(response!.toolCalls.map((c) => [c.id, c.function.arguments])).toEqual([
      ["x1", '{"path":"a"}'],
      ["x2", '{"path":"b"}'],
    ]);
  });

  it("no [DONE], a usage-only final chunk, CRLF line endings", async () => {
    const { response, retries } = await chat([
      { text: "All fine.", crlf: true, done: false, usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 } },
    ]);
    expect(retries).toEqual([]);
    expect(response).toEqual({ content: "All fine.", finishReason: "stop", toolCalls: [], usage: { promptTokens: 12, completionTokens: 3, totalTokens: 15 } });
    expect(model.requests[0]!.stream_options).toEqual({ include_usage: true });
  });

  it('finish_reason "length" is reported, never hidden', async () => {
    const { response } = await chat([{ text: "A long answer that was", finishReason: "length" }]);
    expect(response!.finishReason).toBe("length");
  });

  it("a connection cut mid-stream is retried; the text already given is not given again", async () => {
    const full = "Here is the whole answer, word by word.";
    const { response, deltas, retries } = await chat([{ text: full, cutAfter: 3 }, { text: full }]);
    expect(response!.content).toBe(full);
    expect(deltas.join("")).toBe(full);
    expect(deltas[0]).toBe("Here ");
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatch(/connection was cut in the middle of the answer/);
    expect(model.requests).toHaveLength(2);
  });

  it("a retried answer that differs is shown after a note; the response holds only the new answer", async () => {
    const { response, deltas } = await chat([{ text: "First try says this and", cutAfter: 3 }, { text: "Second try says that." }]);
    expect(response!.content).toBe("Second try says that.");
    expect(deltas.join("")).toBe("First try says \n[… the connection to the model was lost and its answer started again …]\nSecond try says that.");
  });

  it("a stream that just ends, with neither [DONE] nor a finish reason, is retried", async () => {
    const { response, retries } = await chat([{ raw: [chunk({ content: "Half" })] }, { text: "Half and the rest." }]);
    expect(retries).toEqual(["the stream ended before the answer was complete"]);
    expect(response!.content).toBe("Half and the rest.");
  });

  it("a server that never answers: a clear error naming the URL after the timeout, not retried", async () => {
    const started = Date.now();
    const { error } = await chat([{ hang: true }], { timeoutMs: 300 });
    expect(error).toBeInstanceOf(ProviderError);
    expect(error!.message).toBe(`openai/test-model: ${model.baseUrl}/chat/completions did not answer within 0.3 s (SPOOL_MODEL_TIMEOUT_MS)`);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(model.requests).toHaveLength(1);
  });

  it("a server that goes silent mid-answer times out the same way", async () => {
    const { error, deltas } = await chat([{ raw: [chunk({ content: "Thinking" })], after: "hang" }], { timeoutMs: 300 });
    expect(deltas).toEqual(["Thinking"]);
    expect(error!.message).toMatch(/\/chat\/completions sent nothing for 0\.3 s in the middle of its answer/);
  });

  it("max_tokens is sent when configured; a server refusing stream_options is asked again without it", async () => {
    const { response } = await chat([{ status: 400, body: { error: { message: "Unrecognized request argument supplied: stream_options" } } }, { text: "ok" }], {
      maxTokens: 512,
    });
    expect(response!.content).toBe("ok");
    expect(model.requests.map((r) => [r.max_tokens, r.stream_options])).toEqual([
      [512, { include_usage: true }],
      [512, undefined],
    ]);
  });

  it("a server that ignores `stream` answers with one JSON message", async () => {
    const body = {
      choices: [
        {
          index: 0,
          finish_reason: "tool_calls",
          message: {
            role: "assistant",
            content: "Listing.",
            tool_calls: [{ id: "c1", type: "function", function: { name: "env", arguments: '{"command":"ls"}' } }],
          },
        },
      ],
      usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
    };
    const { response, deltas } = await chat([{ status: 200, body }]);
    expect(deltas).toEqual(["Listing."]);
    expect(response).toEqual({
      content: "Listing.",
      finishReason: "tool_calls",
      toolCalls: [{ id: "c1", type: "function", function: { name: "env", arguments: '{"command":"ls"}' } }],
      usage: { promptTokens: 5, completionTokens: 7, totalTokens: 12 },
    });
  });
});
