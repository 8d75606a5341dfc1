import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HEARTBEAT_MS } from "../../src/mcp/spool/progress.js";
import { ENTRY } from "../../src/protocol/status.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { resultText, startMcp } from "./harness.js";

/**
 * A tool call that waits for a person outlasts an MCP client's request timeout when the client resets it on progress
 * (the SDK's `resetTimeoutOnProgress`, what the Inspector's UI and most agents set): spool mcp says it is still
 * waiting every HEARTBEAT_MS, so a decision that comes after the timeout is still the call's answer.
 */
describe("a decision slower than the MCP client's timeout", () => {
  let ts: TestServer;
  let project: string;
  beforeAll(async () => {
    ts = await startTestServer({});
    project = realpathSync(mkdtempSync(join(tmpdir(), "spool-mcp-long-")));
  });
  afterAll(async () => {
    await ts?.stop();
    rmSync(project, { recursive: true, force: true });
  });

  it("run_command waits past the client's timeout on progress, and the late approval is its answer", async () => {
    const timeout = HEARTBEAT_MS + 5_000;
    const mcp = await startMcp({ args: ["--server", ts.server.url, "--project", project], env: { SPOOL_HOME: ts.home } });
    const person = await ts.client();
    await person.initialize(undefined, { root: project });
    try {
      const proposed = person.next("run/proposal", (p) => p.command === "echo decided late", 20_000);
      const started = Date.now();
      const heard: string[] = [];
      const call = mcp.client.callTool({ name: "run_command", arguments: { command: "echo decided late" } }, CallToolResultSchema, {
        timeout,
        resetTimeoutOnProgress: true,
        onprogress: (p) => heard.push(p.message ?? ""),
      });
      const { run, path } = await proposed;
      // The person decides well after the client's timeout would have run out without progress.
      await new Promise((resolve) => setTimeout(resolve, timeout + 3_000));
      expect((await person.call("entry/get", { run, path })).status).toBe(ENTRY.proposed);
      await person.call("run/resolve", { run, path, decision: "accept" });
      const result = await call;
      expect(Date.now() - started).toBeGreaterThan(timeout);
      expect(result.isError ?? false).toBe(false);
      expect(resultText(result)).toContain("decided late");
      expect(heard.some((m) => m.startsWith("still waiting for a decision on"))).toBe(true);
    } finally {
      person.close();
      await mcp.close();
    }
  }, 90_000);
});
