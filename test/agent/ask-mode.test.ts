// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logPath, slugFromCommand } from "../../src/core/producers/slug.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

/**
 * An `ask` loop only reads: it is offered read-only tools, and a call to any other one (typing into a
 * command, signalling it) is a tool error that reaches nothing — even a shell an earlier `act` loop of the
 * same run left running in the background. A scripted OpenAI-compatible model server, the embedded runner
 * running a real `sh`.
 */

const modelEnv = (model: ScriptedModel) => ({ SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" });

describe("ask mode offers and runs read-only tools only", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: modelEnv(model), agent: { toolYieldMs: 300 }, backgroundTimeoutMs: 600_000 });
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });

  it("an ask loop calling write or kill on the background shell an act loop left gets a tool error, and nothing reaches the shell", async () => {
    const a = await ts.clientIn("ask-reads");
    const shell = "sh";
    const log = logPath(1, "sh", slugFromCommand(shell));
    const typed = "echo ASK-MODE-WROTE > askwrote.txt\n";
    model.reply(
      { tools: [{ id: "call_sh", name: "sh", arguments: { command: shell, background: true } }] },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "a shell is running" } }] },
    );
    const proposal = a.next("run/proposal", (p: any) => p.run === "rw", 15_000);
    await a.call("run/create", { alias: "rw", model: "test", prompt: "Start a shell in the background." });
    const { channels } = await a.request("run/resolve", { run: "rw", path: (await proposal).path, decision: "accept" });
    const stdout = channels.find((c: any) => c.channel === 1).path;
    await eventually(async () => (await a.call("run/get", { run: "rw" })).run.status === 200, 30_000, "the act loop to end");
    const actRequests = model.requests.length;

    model.reply(
      { tools: [{ id: "call_write", name: "write", arguments: { path: log, input: typed } }] },
      { tools: [{ id: "call_kill", name: "kill", arguments: { path: log, signal: "KILL" } }] },
      { tools: [{ id: "call_done2", name: "done", arguments: { summary: "looked" } }] },
    );
    await a.call("run/prompt", { run: "rw", prompt: "What is running?", mode: "ask" });
    await model.received(actRequests + 3);
    await eventually(async () => (await a.call("run/get", { run: "rw" })).run.status === 200, 30_000, "the ask loop to end");

    const ask = model.requests[actRequests]!;
    expect(ask.tools.map((t) => t.function.name)).toEqual(["env", "get", "grep", "wait", "jobs", "done"]);
    expect(toolResult(model.requests[actRequests + 1]!, "call_write")).toMatch(/^error: write is not available in ask mode/);
    expect(toolResult(model.requests[actRequests + 2]!, "call_kill")).toMatch(/^error: kill is not available in ask mode/);

    // The shell still runs and has been typed nothing: what a client types now is the first line it reads.
    const shellLog = await a.request("entry/get", { run: "rw", path: log });
    expect(shellLog.producer.state).toBe("running");
    const stdin = `sh://turn_1/${slugFromCommand(shell)}_0`;
    expect((await a.call("entry/list", { run: "rw" })).entries.map((e: any) => e.path)).not.toContain(stdin);
    await a.call("stream/input", { run: "rw", path: log, data: "echo SYNC\n" });
    await eventually(async () => (await a.call("entry/get", { run: "rw", path: stdout })).body.includes("SYNC"), 15_000, "the shell to echo");
    expect((await a.call("entry/get", { run: "rw", path: stdin })).body).toBe("echo SYNC\n");
    expect(existsSync(join(ts.root, "askwrote.txt"))).toBe(false);
    await a.call("stream/cancel", { run: "rw", path: log });
  });
});
