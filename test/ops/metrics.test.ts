import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureRun } from "../helpers/proposals.js";
import { runTool } from "../helpers/runners.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** GET /metrics of an in-process server: who may read it, and what the core's path counts. */
describe("GET /metrics", () => {
  let ts: TestServer;
  let url: string;
  beforeAll(async () => {
    ts = await startTestServer();
    url = `http://127.0.0.1:${ts.server.port}/metrics`;
  });
  afterAll(() => ts.stop());

  const scrape = async () => {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${ts.server.token}` } });
    expect(response.status).toBe(200);
    return response.text();
  };
  const value = (text: string, series: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  it("refuses a request without the token, with a wrong one, or with the token in the URL", async () => {
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { Authorization: "Bearer nope" } })).status).toBe(401);
    expect((await fetch(`${url}?token=${ts.server.token}`, { headers: { Authorization: `Bearer ${ts.server.token}` } })).status).toBe(401);
    expect((await fetch(url, { method: "POST", headers: { Authorization: `Bearer ${ts.server.token}` } })).status).toBe(405);
  });

  it("is Prometheus's text format with the process metrics and Spool's, counted by the core as output is stored and proposals decided", async () => {
    const before = await scrape();
    expect(before).toContain("# TYPE spool_stream_bytes_total counter");
    expect(before).toContain("# TYPE spool_append_seconds histogram");
    expect(before).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(before).toMatch(/^nodejs_eventloop_lag_seconds /m);
    const client = await ts.clientIn("metered");
    await ensureRun(client, "r");
    const { path } = await client.call("proposal/create", { run: "r", tool: "sh", command: "true" });
    const pending = await scrape();
    expect(value(pending, 'spool_proposals_pending{project="metered"}')).toBe(1);
    expect(value(pending, 'spool_producers{state="proposed"}')).toBe(1);
    await client.call("run/resolve", { run: "r", path, decision: "reject" });
    await runTool(client, "r", "sh", "head -c 12345 /dev/zero");
    const after = await scrape();
    expect(value(after, "spool_stream_bytes_total")).toBe(12345);
    expect(value(after, "spool_stream_chunks_total")).toBeGreaterThanOrEqual(1);
    expect(value(after, "spool_append_seconds_count")).toBe(value(after, "spool_stream_chunks_total"));
    expect(value(after, 'spool_decisions_total{outcome="accept",by="person"}')).toBe(1);
    expect(value(after, 'spool_decisions_total{outcome="reject",by="person"}')).toBe(1);
    expect(value(after, "spool_proposal_wait_seconds_count")).toBe(2);
    expect(value(after, 'spool_proposals_pending{project="metered"}')).toBe(0);
    expect(value(after, 'spool_runners{backend="local"}')).toBe(1);
    expect(value(after, 'spool_connections{client="none"}')).toBeGreaterThanOrEqual(1);
  });
});
