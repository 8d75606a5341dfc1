import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { SpoolRpcError } from "../../src/client/spool-client.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";
import { type AcpProcess, initialize, spawnAcp } from "./harness.js";

const modelEnv = (model: ScriptedModel) => ({ SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" });

/**
 * Issue 40: an editor's W3C traceparent, sent in a request's `_meta` (ACP's meta-propagation convention, as MCP's),
 * makes the traces of the proposals its prompt leads to children of the editor's span. Spans are exported by the
 * OpenTelemetry SDK's in-memory exporter from a server given its tracer; `spool acp` is a real subprocess.
 */
describe("spool acp: the editor's traceparent is the parent of its commands' traces", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  let model: ScriptedModel;
  let ts: TestServer;
  let project: string;
  const running: AcpProcess[] = [];

  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ tracer: provider.getTracer("spool-test"), env: modelEnv(model) });
    project = mkdtempSync(join(tmpdir(), "spool-acp-traces-"));
  });
  beforeEach(() => exporter.reset());
  afterEach(async () => {
    for (const acp of running.splice(0)) await acp.stop("SIGKILL");
    model.reset();
  });
  afterAll(async () => {
    await ts.stop();
    await provider.shutdown();
    await model.close();
    rmSync(project, { recursive: true, force: true });
  });

  const traceparent = (trace: string, span: string) => `00-${trace}-${span}-01`;
  const spans = () => exporter.getFinishedSpans();
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
  const proposalsOf = (run: string) => spans().filter((s) => s.name === "spool.proposal" && s.attributes["spool.run"] === run);

  /** A session whose prompt (with `meta` as its `_meta`) makes the model run `command`, allowed by the editor; the run's alias. */
  async function promptRunning(acp: AcpProcess, command: string, meta?: Record<string, unknown>): Promise<string> {
    const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    model.reply(
      { tools: [{ id: "call_sh", name: "sh", arguments: { command } }] },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "ran it" } }] },
    );
    const turn = acp.connection.agent.request("session/prompt", {
      sessionId,
      prompt: [{ type: "text", text: `run ${command}` }],
      ...(meta ? { _meta: meta } : {}),
    });
    const ask = await acp.permission();
    ask.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    expect((await turn).stopReason).toBe("end_turn");
    return sessionId.slice(sessionId.indexOf("/") + 1);
  }

  it("session/prompt's _meta.traceparent: the proposal's trace continues the editor's span, down to each channel", async () => {
    const acp = spawnAcp({ args: ["--server", ts.server.url], env: { SPOOL_HOME: ts.home } });
    running.push(acp);
    await initialize(acp);
    const trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    const run = await promptRunning(acp, "echo traced; echo err >&2", { traceparent: traceparent(trace, "a0f067aa0ba902b7") });
    await eventually(() => proposalsOf(run).length === 1, 10_000, "the proposal's span to end");
    const [root] = proposalsOf(run);
    expect(root!.spanContext().traceId).toBe(trace);
    expect(parentOf(root!)).toBe("a0f067aa0ba902b7");
    expect(root!.attributes).toMatchObject({ "spool.tool": "sh", "spool.decision": "accept", "spool.outcome": "completed" });
    expect(String(root!.attributes["spool.proposed_by"])).toMatch(/^model/);
    const children = spans().filter((s) => s.spanContext().traceId === trace && parentOf(s) === root!.spanContext().spanId);
    expect(children.map((s) => s.name).sort()).toEqual(["spool.channel", "spool.channel", "spool.decision", "spool.dispatch"]);
  });

  it("without one in the prompt, initialize's _meta.traceparent is the parent; one that is not a traceparent is ignored", async () => {
    const acp = spawnAcp({ args: ["--server", ts.server.url], env: { SPOOL_HOME: ts.home } });
    running.push(acp);
    const trace = "6bf92f3577b34da6a3ce929d0e0e4736";
    await acp.connection.agent.request("initialize", {
      protocolVersion: 1,
      clientCapabilities: { fs: { readTextFile: false, writeTextFile: false }, terminal: false },
      clientInfo: { name: "traced-editor", version: "1.0.0" },
      _meta: { traceparent: traceparent(trace, "b7ad6b7169203331") },
    });
    const first = await promptRunning(acp, "true");
    // A malformed one in the prompt is not the caller's span: initialize's still is.
    const second = await promptRunning(acp, "true", { traceparent: "00-not-a-trace" });
    await eventually(() => proposalsOf(first).length === 1 && proposalsOf(second).length === 1, 10_000, "both proposals' spans");
    for (const run of [first, second]) {
      const [root] = proposalsOf(run);
      expect(root!.spanContext().traceId).toBe(trace);
      expect(parentOf(root!)).toBe("b7ad6b7169203331");
    }
  });

  it("run/prompt with a traceparent that is not one is refused as invalid params, and no loop is queued", async () => {
    const client = await ts.client();
    await client.initialize(undefined, { root: project });
    const { run } = await client.call("run/create", { model: "test", mode: "act" });
    const refused = await client.call("run/prompt", { run: run.alias, prompt: "hi", traceparent: "00-xyz" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SpoolRpcError);
    expect((refused as SpoolRpcError).code).toBe(-32602);
    expect((await client.call("run/history", { run: run.alias })).messages).toEqual([]);
  });

  it("no traceparent anywhere: the proposal's trace is a root of its own", async () => {
    const acp = spawnAcp({ args: ["--server", ts.server.url], env: { SPOOL_HOME: ts.home } });
    running.push(acp);
    await initialize(acp);
    const run = await promptRunning(acp, "true");
    await eventually(() => proposalsOf(run).length === 1, 10_000, "the proposal's span");
    expect(proposalsOf(run)[0]!.parentSpanContext).toBeUndefined();
  });
});
