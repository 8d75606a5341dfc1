import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUN } from "../../src/protocol/status.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

// decisionTimeoutMs (issue 46): a model's proposal nobody decides is rejected by the deadline, and the model reads why.

describe("a proposal past its deadline", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({
      env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test", SPOOL_DECISION_TIMEOUT_MS: "1500" },
    });
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });

  it("is rejected as decided by the deadline, announced as such, and the model reads that nobody decided in time", async () => {
    const a = await ts.clientIn("deadline");
    model.reply({ tools: [{ id: "call_wait", name: "sh", arguments: { command: "make deploy" } }] }, { text: "Nobody answered; I will not deploy." });
    const proposal = a.next("run/proposal", (p) => p.run === "d", 15_000);
    await a.call("run/create", { alias: "d", model: "test", prompt: "deploy" });
    const notice = await proposal;
    const resolved = await a.next("run/resolved", (r) => r.path === notice.path, 15_000);
    expect(resolved).toMatchObject({ decision: "reject", resolvedBy: "deadline", resolver: { kind: "deadline" } });
    expect(resolved.reason).toMatch(/nobody decided within 1\.5 s.*decisionTimeoutMs/);
    await eventually(async () => (await a.call("run/get", { run: "d" })).run.status === RUN.done, 15_000, "the run to end");
    const result = toolResult(model.requests[1]!, "call_wait")!;
    expect(result).toContain("status: rejected");
    expect(result).toContain("nobody decided within 1.5 s");
    const { events } = await a.call("audit/list", { project: "deadline" });
    expect(events.find((e) => e.action === "expired")).toMatchObject({ principal: "deadline", run: "d", path: notice.path });
  }, 30_000);
});
