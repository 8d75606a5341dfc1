import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { type McpProcess, resultText, startMcp } from "./harness.js";

describe("spool mcp with an agent's credential", () => {
  let ts: TestServer;
  let project: string;
  let dir: string;
  const running: McpProcess[] = [];
  const clients: SpoolClient[] = [];

  beforeAll(async () => {
    ts = await startTestServer({});
    project = mkdtempSync(join(tmpdir(), "spool-mcp-principal-"));
    dir = mkdtempSync(join(tmpdir(), "spool-mcp-tokens-"));
    // Only an admin creates a project (SPEC §2b); the principals below join it.
    const admin = await ts.client();
    await admin.initialize(undefined, { root: project });
    admin.close();
  });
  afterAll(async () => {
    for (const m of running) await m.close().catch(() => undefined);
    for (const c of clients) c.close();
    await ts.stop();
    rmSync(project, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  const credential = async (name: string, role: "agent" | "person") => {
    const admin = await ts.client();
    clients.push(admin);
    const { token } = await admin.call("token/create", { name, role });
    const file = join(dir, `${name}.token`);
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    return { token, file };
  };

  it("proposes as its principal, and shows the person who accepted by their principal's name", async () => {
    const agent = await credential("claude", "agent");
    const alice = await credential("alice", "person");
    const person = await SpoolClient.connect(ts.server.url, { token: alice.token });
    clients.push(person);
    await person.initialize(undefined, { root: project, client: { name: "web view", version: "1" } });
    const mcp = await startMcp({
      args: ["--server", ts.server.url, "--project", project, "--token-file", agent.file],
      env: { SPOOL_HOME: ts.home },
      name: "claude-code",
      elicitation: true,
    });
    running.push(mcp);
    const proposed = person.next("run/proposal", (p) => p.command === "echo from the agent", 20_000);
    const call = mcp.client.callTool({ name: "run_command", arguments: { command: "echo from the agent" } }, CallToolResultSchema, { timeout: 60_000 });
    const p = await proposed;
    expect(p.attributes.proposedBy).toBe("claude via claude-code (spool mcp)");
    // An agent's bridge never asks its client to decide: a person does.
    await expect(person.call("run/resolve", { run: p.run, path: p.path, decision: "accept" })).resolves.toMatchObject({ status: ENTRY.done });
    const text = resultText(await call);
    expect(text).toContain("accepted by alice via web view");
    expect(mcp.elicitations).toEqual([]);
  }, 60_000);

  it("refuses --role person with an agent's credential", async () => {
    const agent = await credential("codex", "agent");
    const mcp = await startMcp({
      args: ["--server", ts.server.url, "--project", project, "--token-file", agent.file, "--role", "person"],
      env: { SPOOL_HOME: ts.home },
    });
    running.push(mcp);
    const result = await mcp.client.callTool({ name: "run_command", arguments: { command: "echo never" } }, CallToolResultSchema, { timeout: 30_000 });
    expect(result.isError).toBe(true);
    expect(resultText(result)).toContain("needs the person role");
  }, 60_000);
});
