import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { type CliProcess, spawnCli } from "../helpers/process.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { type Message, RawClient } from "./raw-client.js";

describe("spool mcp against a hand-written JSON-RPC client (not the SDK)", () => {
  let ts: TestServer;
  let project: string;
  const procs: CliProcess[] = [];
  const others: SpoolClient[] = [];
  const person = async (): Promise<SpoolClient> => {
    const c = await ts.client();
    await c.initialize(undefined, { root: project, client: { name: "web view", version: "1.0" } });
    others.push(c);
    return c;
  };
  const spawn = (args: string[] = []) => {
    const cli = spawnCli(["mcp", "--server", ts.server.url, "--project", project, ...args], { SPOOL_HOME: ts.home });
    procs.push(cli);
    return cli;
  };

  beforeAll(async () => {
    ts = await startTestServer({});
    project = mkdtempSync(join(tmpdir(), "spool-mcp-raw-"));
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      p.child.stdin!.end();
      await p.exitsWithin(10_000);
    }
    for (const c of others.splice(0)) c.close();
  });
  afterAll(async () => {
    await ts.stop();
    rmSync(project, { recursive: true, force: true });
  });

  it("initialize, a tool result with progress before it, and notifications/cancelled — as raw messages", async () => {
    const raw = new RawClient(spawn());
    const init = await raw.initialize();
    expect(init.result.serverInfo.name).toBe("spool");
    expect(init.result.capabilities).toMatchObject({ tools: {}, resources: { subscribe: true, listChanged: true } });

    const listed = await raw.call("tools/list", {});
    const runCommand = listed.result.tools.find((t: Message) => t.name === "run_command");
    expect(runCommand.inputSchema.type).toBe("object");
    expect(runCommand.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });

    const web = await person();
    const proposed = web.next("run/proposal", (p) => p.command === "echo raw one; echo raw two", 20_000);
    const callId = raw.request("tools/call", { name: "run_command", arguments: { command: "echo raw one; echo raw two" }, _meta: { progressToken: "tok-1" } });
    const p = await proposed;
    await web.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    const result = await raw.next((m) => m.id === callId);
    const progress = raw.messages.filter((m) => m.method === "notifications/progress");
    expect(progress.length).toBeGreaterThan(0);
    for (const n of progress) {
      expect(n.params.progressToken).toBe("tok-1");
      expect(typeof n.params.progress).toBe("number");
      expect(typeof n.params.message).toBe("string");
      expect(n.id).toBeUndefined();
    }
    // Rising numbers, and every one before the result.
    expect(progress.map((n) => n.params.progress)).toEqual([...progress.map((n) => n.params.progress)].sort((a, b) => a - b));
    expect(raw.messages.indexOf(progress.at(-1))).toBeLessThan(raw.messages.indexOf(result));
    expect(result.error).toBeUndefined();
    expect(result.result.content).toEqual([{ type: "text", text: expect.stringContaining("raw one\nraw two") }]);
    expect(result.result.isError ?? false).toBe(false);

    // notifications/cancelled: the producer is cancelled, and the request gets no answer.
    const slow = web.next("run/proposal", (q) => q.command === "exec sleep 300", 20_000);
    const slowId = raw.request("tools/call", { name: "run_command", arguments: { command: "exec sleep 300" }, _meta: { progressToken: 7 } });
    const q = await slow;
    const started = web.next("stream/started", (s) => s.path === q.path, 20_000);
    await web.call("run/resolve", { run: q.run, path: q.path, decision: "accept" });
    await started;
    const finished = web.next("stream/finished", (f) => f.path === q.path, 20_000);
    raw.send({ method: "notifications/cancelled", params: { requestId: slowId, reason: "raw client gave up" } });
    expect((await finished).status).toBe(ENTRY.cancelled);
    // A later request is answered; the cancelled one never is.
    const after = await raw.call("tools/call", { name: "list_commands", arguments: {} });
    expect(after.result.content[0].text).toMatch(/exec sleep 300/);
    expect(raw.messages.some((m) => m.id === slowId && (m.result || m.error))).toBe(false);
    const cancelledProgress = raw.messages.filter((m) => m.method === "notifications/progress" && m.params.progressToken === 7);
    expect(cancelledProgress.length).toBeGreaterThan(0);
  });

  it("bad input: an unknown tool, a missing command, an unknown path, a resource that is not Spool's", async () => {
    const raw = new RawClient(spawn());
    await raw.initialize();
    const unknown = await raw.call("tools/call", { name: "rm_everything", arguments: {} });
    expect(unknown.error.code).toBe(-32602);
    expect(unknown.error.message).toContain("Unknown tool: rm_everything");
    const missing = await raw.call("tools/call", { name: "run_command", arguments: {} });
    expect(missing.result.isError).toBe(true);
    expect(missing.result.content[0].text).toMatch(/Input validation error.*command/s);
    const noPath = await raw.call("tools/call", { name: "read_output", arguments: { path: "log://turn_1/sh/none" } });
    expect(noPath.result.isError).toBe(true);
    const badUri = await raw.call("resources/read", { uri: "file:///etc/passwd" });
    expect(badUri.error.code).toBe(-32602);
    // Resource not found: -32602 naming the uri in data, as the v2 SDK answers it in both revisions (it never sends -32002).
    const nothing = await raw.call("resources/read", { uri: "spool://run-404/sh://turn_1/none_1" });
    expect(nothing.error).toMatchObject({ code: -32602, data: { uri: "spool://run-404/sh://turn_1/none_1" } });
    const nothingLog = await raw.call("resources/subscribe", { uri: "spool://run-404/log://turn_1/sh/none" });
    expect(nothingLog.error).toMatchObject({ code: -32602, data: { uri: "spool://run-404/log://turn_1/sh/none" } });
  });

  it("resources/subscribe: at most 64 on a session (the next is -32602 until one is unsubscribed); a proposals URI whose run is no alias follows nothing", async () => {
    const raw = new RawClient(spawn());
    await raw.initialize();
    for (let i = 0; i < 64; i++) expect((await raw.call("resources/subscribe", { uri: `spool://r${i}/proposals` })).result).toEqual({});
    // The same URI again is no new subscription.
    expect((await raw.call("resources/subscribe", { uri: "spool://r0/proposals" })).result).toEqual({});
    const over = await raw.call("resources/subscribe", { uri: "spool://r64/proposals" });
    expect(over.error).toMatchObject({ code: -32602, data: { limit: 64 } });
    expect(over.error.message).toContain("At most 64 resource subscriptions on one session");
    expect((await raw.call("resources/unsubscribe", { uri: "spool://r0/proposals" })).result).toEqual({});
    expect((await raw.call("resources/subscribe", { uri: "spool://r64/proposals" })).result).toEqual({});
    await raw.call("resources/unsubscribe", { uri: "spool://r1/proposals" });
    const noAlias = await raw.call("resources/subscribe", { uri: `spool://${"x".repeat(100_000)}/proposals` });
    expect(noAlias.error.code).toBe(-32602);
  });

  it("usage errors: a bad --mode and a --project that is no directory exit 2 with a message, before any MCP message", async () => {
    const mode = spawnCli(["mcp", "--mode", "yolo"], { SPOOL_HOME: ts.home });
    expect((await mode.exitsWithin(20_000)).code).toBe(2);
    expect(mode.stderr()).toContain('--mode is ask or act, not "yolo"');
    expect(mode.stdout()).toBe("");
    const dir = spawnCli(["mcp", "--project", join(project, "missing")], { SPOOL_HOME: ts.home });
    expect((await dir.exitsWithin(20_000)).code).toBe(2);
    expect(dir.stderr()).toContain("no such directory");
    expect(dir.stdout()).toBe("");
  });

  it("SIGINT with stdin a pipe is ignored (logged on stderr), closing stdin ends it with 0, SIGTERM too", async () => {
    const cli = spawnCli(["mcp", "--server", ts.server.url, "--project", project], { SPOOL_HOME: ts.home, SPOOL_LOG: "info" });
    const raw = new RawClient(cli);
    await raw.initialize();
    cli.child.kill("SIGINT");
    await cli.waitFor(/SIGINT ignored/, "stderr");
    const listed = await raw.call("tools/list", {});
    expect(listed.result.tools.length).toBe(6);
    cli.child.stdin!.end();
    expect((await cli.exitsWithin(10_000)).code).toBe(0);

    const other = spawnCli(["mcp", "--server", ts.server.url, "--project", project], { SPOOL_HOME: ts.home });
    await new RawClient(other).initialize();
    other.child.kill("SIGTERM");
    expect((await other.exitsWithin(10_000)).code).toBe(0);
  });
});
