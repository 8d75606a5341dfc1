import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { logPath, slugFromCommand } from "../../src/core/producers/slug.js";
import { RUN } from "../../src/protocol/status.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

/**
 * The model's `write` answers with what the command printed in reply, as soon as it has come and gone quiet: also
 * when the reply was stored before the write began to wait for it. Here the command's owner is the test's client
 * (runner "self"), which stores the echo while it is being handed the input, so the reply is always there first.
 * Before, the write then waited its whole timeout_ms for a change that had come already (1 run in 3 of a Python
 * REPL's `print`, test/agent/interactive).
 */
describe("write, when the answer came before the wait", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  let client: SpoolClient;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({
      env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" },
      agent: { toolYieldMs: 300 },
      sandbox: "full",
    });
    client = await ts.clientIn("echo");
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });

  it("answers at once with the echo, not after its 30 s timeout", async () => {
    const command = "an echo";
    const log = logPath(1, "sh", slugFromCommand(command));
    let seq = 0;
    let stdout = "";
    // The owner: each input comes back as output, stored before the input is acknowledged.
    client.handle("producer/input", async (p: { run: string; data: string }) => {
      await client.call("stream", { run: p.run, path: log, channel: 1, chunk: `echo: ${Buffer.from(p.data, "base64").toString()}`, seq: ++seq });
      return {};
    });
    model.reply(
      { tools: [{ id: "call_start", name: "sh", arguments: { command } }] },
      { tools: [{ id: "call_write", name: "write", arguments: { path: log, input: "hello\n", timeout_ms: 30_000 } }] },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "it echoed" } }] },
    );
    const accepted = (async () => {
      const proposal = await client.next("run/proposal", (p) => p.run === "e", 15_000);
      const resolved = await client.call("run/resolve", { run: "e", path: proposal.path, decision: "accept", runner: "self" });
      stdout = resolved.channels[0]!.path;
    })();
    const started = Date.now();
    await client.call("run/create", { alias: "e", model: "test", prompt: "Say hello to it." });
    await accepted;
    await eventually(async () => (await client.call("run/get", { run: "e" })).run.status === RUN.done, 25_000, "the run to end");
    const answer = toolResult(model.requests[2]!, "call_write")!;
    expect(answer).toContain('sent: "hello\\n"');
    expect(answer).toContain("echo: hello");
    expect(Date.now() - started).toBeLessThan(15_000);
    await client.call("stream/completed", { run: "e", path: log, exit_code: 0 });
    expect(stdout).toMatch(/^sh:/);
  });
});
