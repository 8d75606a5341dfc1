import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import type { SpoolNotifications } from "../../src/protocol/index.js";
import { RUN } from "../../src/protocol/status.js";
import { type RecordedRequest, type Reply, ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

/** The stand-in's own count of a request's tokens: its JSON's length over four, as a tokenizer averages. */
const tokensOf = (request: RecordedRequest) => Math.ceil(JSON.stringify(request).length / 4);
const WINDOW = 32_768;
const LONG = "The build step compiles every module and links them; ".repeat(28); // about 1,500 characters a turn

const isSummaryRequest = (r: RecordedRequest) => r.tools.length === 0;

/**
 * A model with a 32k window, as a server enforcing it: a request past it is refused as vLLM refuses it; a summary
 * request is answered with a summary; every other request is one more turn of `get` until `turns`, then done.
 */
function windowed(turns: number, state: { turn: number; summaries: number; refused: number }) {
  return (request: RecordedRequest): Reply => {
    if (tokensOf(request) > WINDOW) {
      state.refused++;
      return {
        status: 400,
        body: {
          object: "error",
          message: `This model's maximum context length is ${WINDOW} tokens. However, you requested ${tokensOf(request)} tokens.`,
          code: 400,
        },
      };
    }
    if (isSummaryRequest(request)) {
      state.summaries++;
      return { text: `Summary ${state.summaries}: the agent has been reading entries turn after turn; it is at turn ${state.turn}.` };
    }
    state.turn++;
    if (state.turn >= turns) return { tools: [{ id: `call_done_${state.turn}`, name: "done", arguments: { summary: `finished after ${state.turn} turns` } }] };
    return { text: `Turn ${state.turn}. ${LONG}`, tools: [{ id: `call_${state.turn}`, name: "get", arguments: { path: `sh://turn_${state.turn}/nothing` } }] };
  };
}

async function runStatus(client: SpoolClient, run: string, status: number, timeoutMs: number) {
  await eventually(async () => (await client.call("run/get", { run })).run.status === status, timeoutMs, `run ${run} at ${status}`);
}

describe("runs that outlast the context window", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({
      env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" },
      agent: { toolYieldMs: 60_000, maxStepsPerLoop: 1000 },
    });
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });
  afterEach(() => {
    model.reset();
    model.contextWindow = null;
  });

  it("a 300-turn run against a 32k window ends without a context error: compacted before the window fills, the whole transcript kept and searchable", async () => {
    model.contextWindow = WINDOW; // the model list says it (vLLM's max_model_len)
    const state = { turn: 0, summaries: 0, refused: 0 };
    model.reply(...Array.from({ length: 400 }, () => windowed(300, state)));
    const a = await ts.clientIn("long");
    const compactions: SpoolNotifications["run/compaction"][] = [];
    a.on("run/compaction", (p) => p.run === "long" && compactions.push(p));
    await a.call("run/create", { alias: "long", model: "test", prompt: "Read the entries, one a turn" });
    await runStatus(a, "long", RUN.done, 240_000);
    expect(state.turn).toBe(300);
    expect(state.refused).toBe(0);
    expect(state.summaries).toBeGreaterThanOrEqual(2);
    expect((await a.call("entry/list", { run: "long", pattern: "error://*" })).entries).toEqual([]);
    const main = model.requests.filter((r) => !isSummaryRequest(r));
    expect(Math.max(...main.map(tokensOf))).toBeLessThan(WINDOW);
    // The latest requests start from the summary, not from turn 1.
    const last = main.at(-1)!;
    expect(last.messages[1]!.content).toMatch(/^\[Spool compacted the conversation/);
    expect(JSON.stringify(last.messages)).not.toContain("Turn 1. ");
    const completed = compactions.filter((c) => c.phase === "completed");
    expect(completed).toHaveLength(state.summaries);
    expect(completed[0]).toMatchObject({ reason: "window", replaced: expect.any(Number) });
    expect(completed[0]!.tokensAfter!).toBeLessThan(completed[0]!.tokensBefore!);
    expect(compactions.some((c) => c.phase === "chunk" && c.delta)).toBe(true);
    // The whole transcript stays stored: run/history has turn 1, and the compactions as notes.
    const first = await a.call("run/history", { run: "long", limit: 5 });
    expect(first.messages.some((m) => m.text?.startsWith("Turn 1. "))).toBe(true);
    let notes = 0;
    for (let after: number | null = 0; after !== null; ) {
      const page: Awaited<ReturnType<typeof a.call<"run/history">>> = await a.call("run/history", { run: "long", after, limit: 500 });
      notes += page.messages.filter((m) => m.compaction).length;
      after = page.next;
    }
    expect(notes).toBe(state.summaries);
  }, 300_000);

  it('a "prompt is too long" answer mid-run compacts and the run goes on; grep finds the compacted part in conversation://', async () => {
    // No window known: the model list says nothing and the id is in no table; the server refuses past 6,000 tokens.
    const limit = 6_000;
    let turn = 0;
    let refusals = 0;
    const greps: string[] = [];
    model.reply(
      ...Array.from({ length: 60 }, () => (request: RecordedRequest): Reply => {
        if (tokensOf(request) > limit) {
          refusals++;
          return {
            status: 400,
            body: { error: { message: `prompt is too long: ${tokensOf(request)} tokens > ${limit} maximum`, type: "invalid_request_error" } },
          };
        }
        if (isSummaryRequest(request)) return { text: "Summary: the agent read several entries; the secret word was mentioned in turn 2." };
        turn++;
        const tool = request.messages.at(-1);
        if (tool?.role === "tool" && tool.content?.startsWith("conversation://")) greps.push(tool.content);
        if (turn === 2)
          return { text: `Turn 2 mentions the word ZANZIBAR. ${LONG}`, tools: [{ id: "call_2", name: "get", arguments: { path: "sh://turn_2/x" } }] };
        if (turn < 14) return { text: `Turn ${turn}. ${LONG}`, tools: [{ id: `call_${turn}`, name: "get", arguments: { path: `sh://turn_${turn}/x` } }] };
        if (turn === 14) return { tools: [{ id: "call_grep", name: "grep", arguments: { path: "conversation://", pattern: "ZANZIBAR" } }] };
        return { tools: [{ id: "call_done", name: "done", arguments: { summary: "found it" } }] };
      }),
    );
    const a = await ts.clientIn("too-long");
    const compactions: SpoolNotifications["run/compaction"][] = [];
    a.on("run/compaction", (p) => p.run === "tl" && compactions.push(p));
    await a.call("run/create", { alias: "tl", model: "test", prompt: "Read on" });
    await runStatus(a, "tl", RUN.done, 60_000);
    expect(refusals).toBeGreaterThanOrEqual(1);
    expect(compactions.find((c) => c.phase === "completed")).toMatchObject({ reason: "too long" });
    expect((await a.call("entry/list", { run: "tl", pattern: "error://*" })).entries).toEqual([]);
    expect(greps).toHaveLength(1);
    // Turn 2's reply, which the compaction took out of the requests, and the grep call itself.
    expect(greps[0]).toMatch(/conversation:\/\/: 2 lines matching "ZANZIBAR"/);
    expect(greps[0]).toMatch(/#\d+ assistant: Turn 2 mentions the word ZANZIBAR/);
  }, 90_000);

  it("a provider that still says too long right after a compaction fails the loop, saying so", async () => {
    let answered = 0;
    model.reply(
      ...Array.from({ length: 40 }, () => (request: RecordedRequest): Reply => {
        if (isSummaryRequest(request)) return { text: "Summary." };
        answered++;
        if (answered < 6) return { text: `Turn ${answered}. ${LONG}`, tools: [{ id: `c${answered}`, name: "get", arguments: { path: "sh://turn_1/x" } }] };
        return { status: 400, body: { error: "This model's maximum context length is 100 tokens" } };
      }),
    );
    const a = await ts.clientIn("too-long");
    await a.call("run/create", { alias: "never", model: "test", prompt: "Go" });
    await runStatus(a, "never", RUN.failed, 60_000);
    const { entries } = await a.call("entry/list", { run: "never", pattern: "error://*" });
    const body = (await a.call("entry/get", { run: "never", path: entries[0]!.path })).body as string;
    expect(body).toMatch(/longer than the model's context .*even right after its conversation was compacted/);
  }, 90_000);
});
