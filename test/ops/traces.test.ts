import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SpanStatusCode } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { SpoolRpcError } from "../../src/client/spool-client.js";
import { startTracing } from "../../src/ops/tracing-setup.js";
import { ensureRun } from "../helpers/proposals.js";
import { runTool } from "../helpers/runners.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";
import { startMcp } from "../mcp/harness.js";

/** Traces of proposals, exported by the SDK's in-memory exporter from a server given its tracer. */
describe("one trace per proposal", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ tracer: provider.getTracer("spool-test") });
  });
  afterAll(async () => {
    await ts.stop();
    await provider.shutdown();
  });
  beforeEach(() => exporter.reset());

  const AGENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  const AGENT_SPAN = "00f067aa0ba902b7";
  const traceparent = (trace = AGENT_TRACE, span = AGENT_SPAN) => `00-${trace}-${span}-01`;
  const spans = () => exporter.getFinishedSpans();
  /** The finished spans called `name` in the trace `traceId`. */
  const inTrace = (name: string, traceId: string) => spans().filter((s) => s.name === name && s.spanContext().traceId === traceId);
  /** The root span of run `run`'s proposal (one a run in these tests). */
  const rootOf = (run: string) => spans().filter((s) => s.name === "spool.proposal" && s.attributes["spool.run"] === run);
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

  it("proposed → decided → dispatched → each channel → ended, children of the caller's span, with the principal, runner and sandbox mode and no command text", async () => {
    const client = await ts.clientIn("traced");
    await runTool(client, "r", "sh", "echo secret-words; echo err >&2", { traceparent: traceparent() });
    await eventually(() => inTrace("spool.proposal", AGENT_TRACE).length === 1, 5_000, "the proposal's span to end");
    const [root] = inTrace("spool.proposal", AGENT_TRACE);
    expect(root!.spanContext().traceId).toBe(AGENT_TRACE);
    expect(parentOf(root!)).toBe(AGENT_SPAN);
    expect(root!.attributes).toMatchObject({
      "spool.project": "traced",
      "spool.run": "r",
      "spool.tool": "sh",
      "spool.decision": "accept",
      "spool.decided_by.kind": "person",
      "spool.runner": "local",
      "spool.outcome": "completed",
      "spool.exit_code": 0,
    });
    expect(root!.attributes["spool.sandbox"]).toMatch(/^(workspace-write|full)$/);
    expect(String(root!.attributes["spool.proposed_by"])).not.toBe("");
    const byName = (name: string) => inTrace(name, AGENT_TRACE);
    expect(byName("spool.decision")).toHaveLength(1);
    expect(byName("spool.dispatch")).toHaveLength(1);
    expect(byName("spool.channel")).toHaveLength(2);
    for (const child of [...byName("spool.decision"), ...byName("spool.dispatch"), ...byName("spool.channel")])
      expect(parentOf(child)).toBe(root!.spanContext().spanId);
    expect(
      byName("spool.channel")
        .map((s) => s.attributes["spool.channel"])
        .sort(),
    ).toEqual([1, 2]);
    // Ordered as they happened.
    const [decision] = byName("spool.decision");
    const [dispatch] = byName("spool.dispatch");
    // In milliseconds: the SDK starts a span at Date.now() and ends it at that plus a performance.now() duration, so a
    // span that ends within the millisecond the next one starts can read as after it (by µs) though it came first.
    // The two clocks also part while a span lasts (here ~0.2 ms a second; busy fresh clone q38 saw a dispatch end 1 ms
    // after its channels started): a span's end may be late by 1 ms a second of its duration.
    const at = (t: [number, number]) => Math.floor((t[0] * 1e9 + t[1]) / 1e6);
    const drift = (span: ReadableSpan) => Math.ceil((at(span.endTime) - at(span.startTime)) / 1000);
    expect(at(decision!.endTime)).toBeLessThanOrEqual(at(dispatch!.startTime) + drift(decision!));
    for (const channel of byName("spool.channel")) expect(at(dispatch!.endTime)).toBeLessThanOrEqual(at(channel.startTime) + drift(dispatch!));
    const all = spans().filter((s) => s.spanContext().traceId === AGENT_TRACE);
    expect(all).toHaveLength(5);
    expect(JSON.stringify(all.map((s) => s.attributes))).not.toContain("secret");
  });

  it("a rejected proposal's trace ends at the decision; without a traceparent the proposal's trace takes the connection's from initialize", async () => {
    const client = await ts.client();
    await client.initialize("traced", { root: ts.root, traceparent: traceparent("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331") });
    await ensureRun(client, "r2");
    const { path } = await client.call("proposal/create", { run: "r2", tool: "sh", command: "false" });
    await client.call("run/resolve", { run: "r2", path, decision: "reject" });
    await eventually(() => rootOf("r2").length === 1, 5_000, "the rejected proposal's span");
    const [root] = rootOf("r2");
    expect(root!.spanContext().traceId).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(parentOf(root!)).toBe("b7ad6b7169203331");
    expect(root!.attributes["spool.decision"]).toBe("reject");
    expect(
      spans()
        .filter((s) => s.spanContext().traceId === root!.spanContext().traceId)
        .map((s) => s.name)
        .sort(),
    ).toEqual(["spool.decision", "spool.proposal"]);
  });

  it("a command that fails marks its trace an error; no traceparent anywhere starts a trace of its own", async () => {
    const client = await ts.clientIn("traced");
    await runTool(client, "r3", "sh", "exit 7");
    await eventually(() => rootOf("r3").length === 1, 5_000, "the failed command's span");
    const [root] = rootOf("r3");
    expect(root!.parentSpanContext).toBeUndefined();
    expect(root!.status.code).toBe(SpanStatusCode.ERROR);
    expect(root!.attributes["spool.exit_code"]).toBe(7);
  });

  it("a traceparent that is not one is refused as invalid params, and nothing is proposed", async () => {
    const client = await ts.clientIn("traced");
    await ensureRun(client, "r4");
    const refused = await client.call("proposal/create", { run: "r4", tool: "sh", command: "true", traceparent: "00-xyz" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SpoolRpcError);
    expect((refused as SpoolRpcError).code).toBe(-32602);
    expect((await client.call("proposal/list", { run: "r4" })).proposals).toEqual([]);
  });

  it("across an MCP tool call: the agent's tools/call span (its _meta.traceparent) is the parent of the command's trace", async () => {
    // `spool mcp --project` names the project's directory; the person joins the same project by its root.
    const root = join(ts.root, "mcp-project");
    mkdirSync(root, { recursive: true });
    const mcp = await startMcp({ args: ["--server", ts.server.url, "--project", root], env: { SPOOL_HOME: ts.home } });
    const person = await ts.client();
    await person.initialize(undefined, { root });
    try {
      const proposed = person.next("run/proposal", (p) => p.command === "echo via-mcp", 20_000);
      const call = mcp.client.callTool({
        name: "run_command",
        arguments: { command: "echo via-mcp" },
        _meta: { traceparent: traceparent(AGENT_TRACE, "a1b2c3d4e5f60718") },
      });
      const p = await proposed;
      await person.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
      const result = await call.catch((error: Error) => {
        throw new Error(`${error.message}; spool mcp's stderr:\n${mcp.stderr()}`);
      });
      expect(result.isError).toBeFalsy();
      await eventually(() => inTrace("spool.proposal", AGENT_TRACE).length === 1, 10_000, "the MCP command's span");
      const [root] = inTrace("spool.proposal", AGENT_TRACE);
      expect(root!.spanContext().traceId).toBe(AGENT_TRACE);
      expect(parentOf(root!)).toBe("a1b2c3d4e5f60718");
      expect(spans().filter((s) => s.name === "spool.channel" && parentOf(s) === root!.spanContext().spanId)).toHaveLength(2);
    } finally {
      await mcp.close();
    }
  });

  it("across a tool call over /mcp: the HTTP request's traceparent header is the parent when the call's _meta has none", async () => {
    const root = join(ts.root, "mcp-http-project");
    mkdirSync(root, { recursive: true });
    const person = await ts.client();
    await person.initialize(undefined, { root });
    const endpoint = new URL(`${ts.server.url.replace(/^ws/, "http")}mcp?root=${encodeURIComponent(root)}`);
    const headers = { Authorization: `Bearer ${ts.server.token}`, traceparent: traceparent(AGENT_TRACE, "0102030405060708") };
    const client = new Client({ name: "traced-http-agent", version: "1.0.0" }, { capabilities: {} });
    await client.connect(new StreamableHTTPClientTransport(endpoint, { requestInit: { headers } }));
    try {
      const proposed = person.next("run/proposal", (p) => p.command === "echo via-mcp-http", 20_000);
      const call = client.callTool({ name: "run_command", arguments: { command: "echo via-mcp-http" } });
      const p = await proposed;
      await person.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
      expect((await call).isError).toBeFalsy();
      await eventually(() => spans().some((s) => s.name === "spool.proposal" && parentOf(s) === "0102030405060708"), 10_000, "the /mcp command's span");
      const [root0] = spans().filter((s) => s.name === "spool.proposal" && parentOf(s) === "0102030405060708");
      expect(root0!.spanContext().traceId).toBe(AGENT_TRACE);
    } finally {
      await client.close();
    }
  });
});

describe("traces set up from the environment", () => {
  it("nothing without OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER (or with none); an unknown exporter is refused", async () => {
    expect(await startTracing({})).toBeNull();
    expect(await startTracing({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" })).toBeNull();
    await expect(startTracing({ OTEL_TRACES_EXPORTER: "zipkin" })).rejects.toThrow(
      'OTEL_TRACES_EXPORTER must be otlp, console or none (Spool\'s exporters), got "zipkin"',
    );
  });

  it("OTEL_EXPORTER_OTLP_ENDPOINT: the spans go to that OTLP/HTTP receiver (here a loopback HTTP server taking /v1/traces)", async () => {
    const posts: { path: string; type: string; body: Buffer }[] = [];
    const receiver = createServer((request, response) => {
      const parts: Buffer[] = [];
      request.on("data", (p: Buffer) => parts.push(p));
      request.on("end", () => {
        posts.push({ path: request.url ?? "", type: String(request.headers["content-type"]), body: Buffer.concat(parts) });
        response.writeHead(200, { "Content-Type": "application/x-protobuf" }).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    const { port } = receiver.address() as AddressInfo;
    const ts = await startTestServer({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` } });
    try {
      const client = await ts.clientIn("exported");
      await runTool(client, "r", "sh", "true", { traceparent: "00-11112222333344445555666677778888-1111222233334444-01" });
    } finally {
      // Stopping flushes the batch.
      await ts.stop();
      receiver.close();
    }
    expect(posts.length).toBeGreaterThan(0);
    expect(posts[0]!.path).toBe("/v1/traces");
    // The trace id travels as its 16 bytes in a protobuf body, as hex in a JSON one.
    const bodies = Buffer.concat(posts.map((p) => p.body));
    const traceId = "11112222333344445555666677778888";
    expect(
      bodies.includes(Buffer.from(traceId, "hex")) || bodies.includes(Buffer.from(traceId)),
      `${posts.map((p) => p.type)}: ${bodies.toString("hex").slice(0, 400)}`,
    ).toBe(true);
  });
});
