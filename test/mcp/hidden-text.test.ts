import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { type McpProcess, resultText, startMcp } from "./harness.js";

/**
 * Issue 57 item 10: a command prints `rm -rf ~`, moves up and erases it, prints `echo hello`. A terminal shows
 * only `echo hello`; the model, over a real `spool serve` and `spool mcp`, reads both and the moves as escapes.
 */
describe("the model's view through MCP shows text a command's cursor moves hid", () => {
  let ts: TestServer;
  let project: string;
  let mcp: McpProcess;
  let web: SpoolClient;

  beforeAll(async () => {
    ts = await startTestServer({});
    project = mkdtempSync(join(tmpdir(), "spool-mcp-hidden-"));
    mcp = await startMcp({ args: ["--server", ts.server.url, "--project", project], env: { SPOOL_HOME: ts.home } });
    web = await ts.client();
    await web.initialize(undefined, { root: project, client: { name: "web view", version: "1.0" } });
  });
  afterAll(async () => {
    await mcp?.close().catch(() => undefined);
    web?.close();
    await ts?.stop();
    rmSync(project, { recursive: true, force: true });
  });

  it("run_command's result and read_output carry the erased line, then `\\e[1A\\e[2K` before what was drawn over it", async () => {
    const proposed = web.next("run/proposal", (p) => p.command.includes("echo hello"), 20_000);
    const call = mcp.client.callTool({ name: "run_command", arguments: { command: "printf 'rm -rf ~\\n\\033[1A\\033[2Kecho hello\\n'" } }, undefined, {
      timeout: 60_000,
    });
    const p = await proposed;
    await web.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    const result = resultText(await call);
    const read = resultText(await mcp.client.callTool({ name: "read_output", arguments: { path: p.path } }));
    for (const shown of [result, read]) {
      expect(shown).toContain("rm -rf ~\n\\e[1A\\e[2Kecho hello");
      expect(shown).not.toContain("\u001b");
    }
    // The raw channel has the bytes as printed (a PTY may have made each \n a \r\n).
    const stdout = (await web.call("entry/list", { run: p.run, pattern: "sh://*_1" })).entries[0]!.path as string;
    const raw = (await web.call("entry/get", { run: p.run, path: stdout })).body as string;
    expect(raw.replace(/\r/g, "")).toBe("rm -rf ~\n\u001b[1A\u001b[2Kecho hello\n");
  });
});
