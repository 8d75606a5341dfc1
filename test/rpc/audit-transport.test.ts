import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateTaskResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { unixSocketUrl } from "../../src/client/ws-transport.js";
import { initialize as acpInitialize } from "../acp/harness.js";
import { editorByUrl } from "../acp/url-harness.js";
import { freePort, type ServeProcess, spawnCli, spawnServe } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";

/*
 * Issue 55: the trail records project creation (with its absolute root), runner attaches and default-runner changes,
 * and every act's client as the caller's claim beside the transport the server verified (the home's Unix socket,
 * TCP, the server's own /mcp), over a real `spool serve`.
 */

type Event = { action: string; principal: string; transport: string | null; client: string | null; project: string | null; detail: Record<string, unknown> };

describe("the audit trail's transport, claims, projects and runners", () => {
  let serve: ServeProcess;
  let home: string;
  let root: string;
  let token: string;
  let port: number;
  let admin: SpoolClient;
  const socket = () => unixSocketUrl(join(home, "spool.sock"));

  beforeAll(async () => {
    home = tempDir("spool-at-");
    root = tempDir("spool-at-root-");
    for (const dir of ["p", "q", "m", "a"]) mkdirSync(join(root, dir));
    port = await freePort();
    serve = await spawnServe(["--port", String(port), "--home", home, "--demo-model"]);
    token = readFileSync(join(home, "token"), "utf8").trim();
    admin = await SpoolClient.connect(socket(), { token });
    await admin.initialize("p", { root: join(root, "p"), client: { name: "spool-cli", version: "1" } });
  }, 90_000);
  afterAll(async () => {
    admin?.close();
    await serve?.stop();
  });

  const acts = async (action: string): Promise<Event[]> => ((await admin.call("audit/list", {})).events as Event[]).filter((e) => e.action === action);

  it("records a project's creation with its absolute root, who created it, the verified transport and the claimed client", async () => {
    expect((await acts("project/create")).find((e) => e.project === "p")).toMatchObject({
      principal: "admin",
      transport: "unix",
      client: "spool-cli",
      detail: { name: "p", root: join(root, "p") },
    });
    // Over TCP (the server's proof first), claiming to be the page: recorded as TCP, the claim beside it.
    const tcp = await SpoolClient.connect(serve.url, { token });
    try {
      await tcp.initialize("q", { root: join(root, "q"), client: { name: "spool-web", version: "1" } });
      // Joining a project that exists creates nothing: one row for q.
      const again = await SpoolClient.connect(socket(), { token });
      await again.initialize("q");
      again.close();
    } finally {
      tcp.close();
    }
    const q = (await acts("project/create")).filter((e) => e.project === "q");
    expect(q).toEqual([expect.objectContaining({ principal: "admin", transport: "tcp", client: "spool-web", detail: { name: "q", root: join(root, "q") } })]);
  });

  it("records an agent that claims to be spool-web over the socket as transport unix with the claim spool-web", async () => {
    const { token: agentToken } = await admin.call("token/create", { name: "bot", role: "agent", projects: ["p"] });
    // A forged Spool-Door (the value the server's own /mcp sends, guessed) proves nothing: the socket is what it is.
    const agent = await SpoolClient.connect(socket(), { token: agentToken, door: `mcp.${"0".repeat(48)}` });
    try {
      await agent.initialize("p", { client: { name: "spool-web", version: "1" } });
      await agent.call("run/create", { alias: "claims" });
      const { path } = await agent.call("proposal/create", { run: "claims", tool: "sh", command: "echo claimed" });
      await agent.call("run/resolve", { run: "claims", path, decision: "reject" });
      const proposal = (await acts("proposal")).find((e) => (e as { path?: string }).path === path);
      expect(proposal).toMatchObject({ principal: "bot", transport: "unix", client: "spool-web" });
      const decision = (await acts("decision")).find((e) => (e as { path?: string }).path === path);
      expect(decision).toMatchObject({ principal: "bot", transport: "unix", client: "spool-web", detail: { how: "key", resolver: "connection" } });
    } finally {
      agent.close();
    }
    // spool audit shows the client as the claim it is, beside the transport the server verified.
    const cli = spawnCli(["audit", "--project", "p"], { SPOOL_SERVER: socket(), SPOOL_TOKEN_FILE: join(home, "token"), SPOOL_HOME: home });
    expect(await cli.exit).toBe(0);
    const line = cli
      .output()
      .split("\n")
      .find((l) => /proposal\s+bot/.test(l));
    expect(line).toContain('bot over the Unix socket, client claims "spool-web"');
  }, 60_000);

  it("records a runner's attach and each change of the project's default runner, with the one it took over from", async () => {
    const first = await SpoolClient.connect(socket(), { token });
    const second = await SpoolClient.connect(socket(), { token });
    const { token: runnerToken } = await admin.call("token/create", { name: "rack", role: "runner", projects: ["p"] });
    const plain = await SpoolClient.connect(serve.url, { token: runnerToken });
    try {
      await first.initialize("p", { client: { name: "runner-a", version: "1" } });
      await second.initialize("p", { client: { name: "runner-b", version: "1" } });
      await plain.initialize("p", { client: { name: "spool-runner", version: "1" } });
      await first.call("runner/attach", { name: "dock", backend: "local", default: true });
      await second.call("runner/attach", { name: "dock2", backend: "local", default: true, replaceDefault: true });
      await plain.call("runner/attach", { name: "plain", backend: "local" });
      // A refused attach (a second default without replaceDefault) records nothing.
      const third = await SpoolClient.connect(socket(), { token });
      await third.initialize("p");
      await expect(third.call("runner/attach", { name: "dock3", backend: "local", default: true })).rejects.toMatchObject({ errorCode: "CONFLICT" });
      third.close();
      const attaches = (await acts("runner/attach")).filter((e) => e.project === "p");
      expect(attaches.map((e) => [e.principal, e.transport, e.client, e.detail])).toEqual([
        ["admin", "unix", "runner-a", { name: "dock", backend: "local", default: true, resumed: 0 }],
        ["admin", "unix", "runner-b", { name: "dock2", backend: "local", default: true, resumed: 0 }],
        ["rack", "tcp", "spool-runner", { name: "plain", backend: "local", default: false, resumed: 0 }],
      ]);
      const defaults = (await acts("runner/default")).filter((e) => e.project === "p");
      expect(defaults.map((e) => [e.principal, e.client, e.detail])).toEqual([
        ["admin", "runner-a", { runner: "dock", before: null }],
        ["admin", "runner-b", { runner: "dock2", before: "dock" }],
      ]);
    } finally {
      first.close();
      second.close();
      plain.close();
    }
  }, 60_000);

  it("records what an agent does through the server's own /mcp as transport mcp (the project it created too)", async () => {
    const mcp = new Client({ name: "http-agent", version: "1.0.0" }, { capabilities: {} });
    const url = new URL(`http://127.0.0.1:${port}/mcp?root=${encodeURIComponent(join(root, "m"))}`);
    await mcp.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    try {
      await mcp.request(
        { method: "tools/call", params: { name: "run_command", arguments: { command: "echo over-mcp" }, task: { ttl: 60_000 } } },
        CreateTaskResultSchema,
      );
      // The task is answered as the proposal is made: its act is in the trail by then, or a moment after.
      let proposal: Event | undefined;
      await eventually(async () => (proposal = (await acts("proposal")).find((e) => e.project === "m")) !== undefined, 10_000, "the proposal of m");
      expect(proposal).toMatchObject({ principal: "admin", transport: "mcp", client: expect.stringContaining("http-agent") });
      expect((await acts("project/create")).find((e) => e.project === "m")).toMatchObject({ transport: "mcp", detail: { root: join(root, "m") } });
    } finally {
      await mcp.close();
    }
  }, 60_000);

  it("records a project an editor's session created through the server's own /acp as transport acp", async () => {
    const editor = editorByUrl(port, "http", token);
    try {
      await acpInitialize(editor, { name: "phone" });
      await editor.connection.agent.request("session/new", { cwd: join(root, "a"), mcpServers: [] });
      expect((await acts("project/create")).find((e) => e.project === "a")).toMatchObject({
        principal: "admin",
        transport: "acp",
        client: expect.stringContaining("phone"),
        detail: { name: "a", root: join(root, "a") },
      });
    } finally {
      void editor.connection.close?.();
    }
  }, 60_000);
});
