import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type AcpProcess, initialize, spawnAcp } from "../acp/harness.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";
import { type McpProcess, startMcp } from "../mcp/harness.js";

/**
 * `spool mcp` and `spool acp` say why their project's connection does not come back (the credential revoked, the
 * project removed while they are joined to it): each refused try to join again is said on stderr (MCP: also to the
 * MCP client, as a log message), at the first try and then at 2, 4, 8, …. Real processes, driven by the MCP and ACP
 * SDKs' own clients.
 */
let ts: TestServer;
let model: ScriptedModel;
const dirs: string[] = [];
let mcp: McpProcess | null = null;
let acp: AcpProcess | null = null;
beforeAll(async () => {
  model = await ScriptedModel.start();
  ts = await startTestServer({ env: modelEnv() });
});
afterAll(async () => {
  await mcp?.close();
  await acp?.stop();
  await ts?.stop();
  await model?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A session needs a model: the scripted one. */
const modelEnv = () => ({ SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" });

const project = (name: string) => {
  const dir = mkdtempSync(join(tmpdir(), `spool-${name}-`));
  dirs.push(dir);
  return dir;
};

it("spool mcp says on stderr and to its MCP client why it cannot join again once its credential is revoked", async () => {
  const root = project("mcp-revoked");
  const admin = await ts.client();
  // Made by an admin: an agent's credential joins a project, it does not make one.
  await admin.initialize(undefined, { root, client: { name: "admin", version: "1" } });
  const tokenFile = join(project("mcp-token"), "token");
  writeFileSync(tokenFile, `${(await admin.call("token/create", { name: "mcp-agent", role: "agent" })).token}\n`, { mode: 0o600 });
  mcp = await startMcp({ args: ["--server", ts.server.url, "--project", root, "--token-file", tokenFile], env: { SPOOL_HOME: ts.home } });
  const told: string[] = [];
  mcp.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void told.push(String(n.params.data)));
  await mcp.client.setLoggingLevel("info");
  // The first tool call joins the project.
  await mcp.client.callTool({ name: "list_commands", arguments: {} });
  // Revoked: its connection closes, and every try to join again is refused (401).
  await admin.call("token/revoke", { name: "mcp-agent" });
  const line = /spool mcp: the project at .+: the connection to the Spool server dropped, and try 1 to join again failed \(.*401.*\); still trying/;
  await eventually(
    async () => line.test(mcp!.stderr()),
    20_000,
    () => `the first refused try on stderr; it said:\n${mcp!.stderr()}`,
  );
  await eventually(async () => told.some((t) => line.test(t)), 20_000, "the first refused try as an MCP log message");
  expect(mcp.stderr()).not.toMatch(/try 3 to join/);
  admin.close();
});

it("spool acp says on stderr why it cannot join its removed project again", async () => {
  const root = project("acp-gone");
  acp = spawnAcp({ args: ["--server", ts.server.url], env: { SPOOL_HOME: ts.home } });
  await initialize(acp);
  await acp.connection.agent.request("session/new", { cwd: root, mcpServers: [] });
  const admin = await ts.clientIn("acp-admin");
  const name = (await admin.call("project/list", {})).projects.find((p: { root?: string | null }) => p.root === root)?.name ?? "";
  expect(name).toContain(basename(root).slice(0, 8));
  await admin.call("project/delete", { project: name, runs: 1 });
  const line = new RegExp(
    `spool acp: project "${name}": the connection to the Spool server dropped, and try 1 to join again failed \\(NOT_FOUND: [^)]+\\); still trying`,
  );
  await eventually(async () => line.test(acp!.stderr()), 20_000, "the first refused try on stderr");
  admin.close();
});

it("spool acp says on stderr, as loud as its warnings, that it joined again once its server is back", async () => {
  // A server of its own, on a home kept across its restart: the same token, the same address.
  const home = project("acp-back-home");
  let back: TestServer | null = null;
  let first: TestServer | null = await startTestServer({ home, env: modelEnv() });
  const port = new URL(first.server.url).port;
  const root = project("acp-back");
  const bridge = spawnAcp({ args: ["--server", first.server.url], env: { SPOOL_HOME: home } });
  try {
    await initialize(bridge);
    await bridge.connection.agent.request("session/new", { cwd: root, mcpServers: [] });
    await first.stop();
    first = null;
    await eventually(
      async () => /try 1 to join again failed/.test(bridge.stderr()),
      20_000,
      () => `the first failed try; it said:\n${bridge.stderr()}`,
    );
    back = await startTestServer({ home, port: Number(port), env: modelEnv() });
    await eventually(
      async () => /spool acp: project "[^"]+": joined the Spool server again after \d+ failed tr(y|ies)/.test(bridge.stderr()),
      30_000,
      () => `the line that says it is back; it said:\n${bridge.stderr()}`,
    );
  } finally {
    await bridge.stop();
    await first?.stop();
    await back?.stop();
  }
});
