import { mkdirSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RecordedRequest, type Reply, ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";
import { agentText, initialize } from "./harness.js";
import { aborted, editorByUrl } from "./url-harness.js";
import { isKind, v2EditorByUrl } from "./v2-harness.js";

const LONG = "Reading the module list and what each one depends on; ".repeat(30);

/** A model with an 8k window (its model list says so): `get` turn after turn with long replies, then done; summaries on request. */
function turns(count: number) {
  let turn = 0;
  return (request: RecordedRequest): Reply => {
    if (request.tools.length === 0) return { text: "Summary: the agent read the module list over several turns.", delayMs: 5 };
    turn++;
    if (turn >= count) return { tools: [{ id: `done_${turn}`, name: "done", arguments: { summary: "read them all" } }] };
    return { text: `Turn ${turn}. ${LONG}`, tools: [{ id: `get_${turn}`, name: "get", arguments: { path: `sh://turn_${turn}/x` } }] };
  };
}

describe("a compaction and a budget seen by ACP clients at /acp", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  let project: string;
  let port: number;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    model.contextWindow = 8_000;
    ts = await startTestServer({
      env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl },
      // Every run's default budget: 250 tokens (the compaction's model reports no usage, so only the budget test meets it).
      agent: { maxStepsPerLoop: 200, budgets: { default: { tokens: 250 } } },
    });
    port = Number(new URL(ts.server.url).port);
    project = join(tempDir("spool-acp-compaction-"), "proj");
    mkdirSync(join(project, ".git"), { recursive: true });
    project = realpathSync(project);
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });
  afterEach(() => model.reset());

  it("ACP v2: compaction_update in_progress, its summary as compaction_summary_chunk, then completed; ACP v1 reads it as the agent's message", async () => {
    const next = turns(14);
    model.reply(...Array.from({ length: 40 }, () => next));
    const v2 = v2EditorByUrl(port, "ws", ts.server.token);
    const v1 = editorByUrl(port, "http", ts.server.token);
    try {
      const init = await v2.connection.agent.request("initialize", { protocolVersion: 2, info: { name: "v2-editor", version: "1.0.0" }, capabilities: {} });
      expect(init.protocolVersion).toBe(2);
      const { sessionId } = await v2.connection.agent.request("session/new", { cwd: project });
      await initialize(v1, { name: "v1-editor" });
      await v1.connection.agent.request("session/resume", { sessionId, cwd: project });
      await v2.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "Read every module" }] });
      const started = await v2.update((u) => isKind("compaction_update")(u) && u.status === "in_progress", 60_000);
      const id = (started.update as { compactionId: string }).compactionId;
      const done = await v2.update((u) => isKind("compaction_update")(u) && u.compactionId === id && u.status === "completed", 60_000);
      expect(done.update).toMatchObject({ _meta: { spool: { reason: "window", replaced: expect.any(Number) } } });
      const chunks = v2
        .updates(sessionId)
        .map((u) => u.update)
        .filter(isKind("compaction_summary_chunk"))
        .filter((u) => u.compactionId === id);
      expect(chunks.map((c) => (c.content as { text: string }).text).join("")).toBe("Summary: the agent read the module list over several turns.");
      // v2 gets no agent text for it: the compaction is its own entity.
      expect(v2.updates(sessionId).some((u) => isKind("agent_message_chunk")(u.update) && JSON.stringify(u.update).includes("compacted"))).toBe(false);
      await v2.update((u) => isKind("state_update")(u) && u.state === "idle", 60_000);
      // v1 has it as the agent's words: the line, the summary, the line it ended with.
      await v1.update((u) => u.sessionUpdate === "agent_message_chunk" && JSON.stringify(u).includes("context compacted"), undefined, 30_000);
      const said = agentText(v1.updates(sessionId));
      expect(said).toContain("── compacting the conversation (near the model's context window) …");
      expect(said).toContain("Summary: the agent read the module list over several turns.");
      expect(said).toMatch(/── context compacted \(near the model's context window\): \d+ earlier messages summarised/);
    } finally {
      void v2.connection.close();
      void v1.connection.close?.();
    }
  }, 120_000);

  it("ACP v2: a run at its budget asks the editor (state requires_action, a permission request about the tool call); raising it lets the run end", async () => {
    let turn = 0;
    model.reply(
      ...Array.from({ length: 10 }, () => (): Reply => {
        turn++;
        const usage = { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 };
        if (turn >= 5) return { tools: [{ id: `done_${turn}`, name: "done", arguments: { summary: "all read" } }], usage };
        return { text: `Turn ${turn}.`, tools: [{ id: `get_b${turn}`, name: "get", arguments: { path: "sh://turn_1/x" } }], usage };
      }),
    );
    const v2 = v2EditorByUrl(port, "ws", ts.server.token);
    try {
      await v2.connection.agent.request("initialize", { protocolVersion: 2, info: { name: "v2-editor", version: "1.0.0" }, capabilities: {} });
      const { sessionId } = await v2.connection.agent.request("session/new", { cwd: project });
      await v2.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "Read five things" }] });
      const ask = await v2.permission(60_000);
      expect(ask.params.subject).toMatchObject({ type: "tool_call" });
      expect(ask.params.title).toBe("Paused: its token budget of 250 tokens was reached (360 tokens used)");
      expect(ask.params.options.map((o) => o.optionId)).toEqual(["raise", "stop"]);
      await v2.update((u) => isKind("state_update")(u) && u.state === "requires_action", 10_000);
      expect(model.requests.filter((r) => r.tools.length > 0)).toHaveLength(3);
      ask.answer({ outcome: { outcome: "selected", optionId: "raise" } });
      await v2.update((u) => isKind("state_update")(u) && u.state === "idle" && u.stopReason === "end_turn", 60_000);
      expect(turn).toBe(5);
    } finally {
      void v2.connection.close();
    }
  }, 120_000);

  it("an editor that joins after the run paused is asked too: ACP v2 by session/resume on a new connection, ACP v1 by session/load; raising it from one withdraws the other's", async () => {
    let turn = 0;
    model.reply(
      ...Array.from({ length: 10 }, () => (): Reply => {
        turn++;
        const usage = { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 };
        if (turn >= 5) return { tools: [{ id: `done_j${turn}`, name: "done", arguments: { summary: "all read" } }], usage };
        return { text: `Turn ${turn}.`, tools: [{ id: `get_j${turn}`, name: "get", arguments: { path: "sh://turn_1/x" } }], usage };
      }),
    );
    const first = v2EditorByUrl(port, "ws", ts.server.token);
    await first.connection.agent.request("initialize", { protocolVersion: 2, info: { name: "v2-first", version: "1.0.0" }, capabilities: {} });
    const { sessionId } = await first.connection.agent.request("session/new", { cwd: project });
    void first.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "Read five things" }] }).catch(() => undefined);
    await first.permission(60_000);
    // That editor goes away without answering; the run stays paused for whoever comes.
    await first.connection.close();
    const later = v2EditorByUrl(port, "ws", ts.server.token);
    const v1 = editorByUrl(port, "http", ts.server.token);
    try {
      await later.connection.agent.request("initialize", { protocolVersion: 2, info: { name: "v2-later", version: "1.0.0" }, capabilities: {} });
      await later.connection.agent.request("session/resume", { sessionId, cwd: project });
      const ask = await later.permission(30_000);
      expect(ask.params.title).toBe("Paused: its token budget of 250 tokens was reached (360 tokens used)");
      await initialize(v1, { name: "v1-later" });
      await v1.connection.agent.request("session/load", { sessionId, cwd: project, mcpServers: [] });
      const v1Ask = await v1.permission(30_000);
      expect(v1Ask.params.toolCall.title).toBe("Paused: its token budget of 250 tokens was reached (360 tokens used)");
      expect(model.requests.filter((r) => r.tools.length > 0)).toHaveLength(3);
      ask.answer({ outcome: { outcome: "selected", optionId: "raise" } });
      // The v1 editor's request is withdrawn once the run goes on, and the run ends.
      await aborted(v1Ask.signal);
      await later.update((u) => isKind("tool_call_update")(u) && u.status === "completed" && JSON.stringify(u).includes("budget raised"), 30_000);
      await eventually(() => turn === 5, 60_000, "the run's last turn");
    } finally {
      void later.connection.close();
      void v1.connection.close?.();
    }
  }, 120_000);
});
