import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";
import { type McpProcess, resultText, startMcp } from "./harness.js";

/** Issue 38, point 4: every address a tool of `spool mcp` returns is accepted by the tool that reads it. */
describe("spool mcp: the addresses its tools return", () => {
  let ts: TestServer;
  let project: string;
  let mcp: McpProcess;
  let web: SpoolClient;

  beforeAll(async () => {
    ts = await startTestServer({});
    project = mkdtempSync(join(tmpdir(), "spool-mcp-addresses-"));
    mcp = await startMcp({ args: ["--server", ts.server.url, "--project", project], env: { SPOOL_HOME: ts.home } });
    web = await ts.client();
    await web.initialize(undefined, { root: project, client: { name: "web view", version: "1.0" } });
  }, 60_000);
  afterAll(async () => {
    await mcp?.close();
    web?.close();
    await ts?.stop();
    rmSync(project, { recursive: true, force: true });
  });

  it("read_output takes the path and the resource a background result names, in every form a client passes a URI on", async () => {
    const proposed = web.next("run/proposal", (p) => p.command === "echo hi", 30_000);
    const call = mcp.client.callTool({ name: "run_command", arguments: { command: "echo hi", background: true } });
    const p = await proposed;
    await web.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    const started = resultText(await call);
    const path = /^path: (\S+)$/m.exec(started)?.[1];
    const resource = /^resource: (\S+)$/m.exec(started)?.[1];
    expect(path).toBe(p.path);
    expect(resource).toBe(`spool://${p.run}/${p.path}`);
    await eventually(async () => resultText(await mcp.client.callTool({ name: "list_commands", arguments: { state: "finished" } })).includes(p.path), 20_000);
    const bare = p.path.replace(/^log:\/\//, "");
    const forms = [
      path!,
      resource!,
      // As the issue saw it named: the URI's path without the log:// scheme.
      `spool://${p.run}/${bare}`,
      // Normalised by a URL parser: the scheme's // folded.
      `spool://${p.run}/log:/${bare}`,
      // Percent-encoded, as a client escapes a URI's path.
      `spool://${p.run}/${encodeURIComponent(p.path)}`,
    ];
    for (const form of forms) {
      const read = await mcp.client.callTool({ name: "read_output", arguments: { path: form } });
      expect(read.isError, `${form}: ${resultText(read)}`).toBeFalsy();
      expect(resultText(read), form).toContain("hi");
    }
    // The channels a read names (as URIs when it was given one) are read back too.
    const named = resultText(await mcp.client.callTool({ name: "read_output", arguments: { path: resource!, view: "raw" } }));
    const channels = [...named.matchAll(/^--- (\S+) \(/gm)].map((m) => m[1]!);
    expect(channels.length).toBeGreaterThan(0);
    for (const channel of channels) {
      expect(channel.startsWith(`spool://${p.run}/`), channel).toBe(true);
      const read = await mcp.client.callTool({ name: "read_output", arguments: { path: channel, view: "raw" } });
      expect(read.isError, `${channel}: ${resultText(read)}`).toBeFalsy();
    }
    const stdout = channels.find((c) => c.endsWith("_1"))!;
    expect(resultText(await mcp.client.callTool({ name: "read_output", arguments: { path: stdout, view: "raw" } }))).toContain("\nhi\n");
    // And the other tools that take a path take the same forms.
    const cancel = await mcp.client.callTool({ name: "cancel", arguments: { path: `spool://${p.run}/${bare}` } });
    expect(cancel.isError, resultText(cancel)).toBeFalsy();
  }, 120_000);
});
