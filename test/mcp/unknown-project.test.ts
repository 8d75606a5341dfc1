import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ERRORS } from "../../src/protocol/errors.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";
import { modern } from "./modern-harness.js";

/*
 * /mcp?project=NAME for a project the server does not have, over a real `spool serve`: a 2025-11-25 session's
 * initialize is answered with a JSON-RPC error, NOT_FOUND naming the projects there are (the MCP SDK's client fails
 * to connect, with Spool's message), and neither a session nor its Spool connection is left (an agent allowed two
 * connections fails five times, then connects); a 2026-07-28 request says the same. A known name connects.
 */

describe("/mcp naming a project the server does not have", () => {
  let home: string;
  let port: number;
  let serve: ServeProcess;
  let token: string;
  let agent: string;
  let other: string;
  const url = (project: string) => new URL(`http://127.0.0.1:${port}/mcp?project=${project}`);

  beforeAll(async () => {
    home = tempDir("spool-mcp-unknown-");
    const base = tempDir("spool-mcp-unknown-root-");
    writeFileSync(join(home, "config.json"), JSON.stringify({ limits: { maxConnectionsPerPrincipal: 2 } }));
    port = await freePort();
    serve = await spawnServe(["--port", String(port), "--home", home, "--no-local-runner"]);
    token = readFileSync(join(home, "token"), "utf8").trim();
    const admin = await SpoolClient.connect(serve.url, { token });
    for (const name of ["alpha", "beta"]) {
      mkdirSync(join(base, name, ".git"), { recursive: true });
      await admin.call("project/create", { root: join(base, name) });
    }
    agent = (await admin.call("token/create", { name: "agent", role: "agent" })).token;
    other = (await admin.call("token/create", { name: "other-agent", role: "agent" })).token;
    admin.close();
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  const sdkClient = () => new Client({ name: "unknown-project-agent", version: "1.0.0" }, { capabilities: {} });
  const transport = (project: string, credential = token) =>
    new StreamableHTTPClientTransport(url(project), { requestInit: { headers: { Authorization: `Bearer ${credential}` } } });

  it("a 2025-11-25 initialize is a JSON-RPC error naming the projects there are, and makes no session", async () => {
    const client = sdkClient();
    const failed = await client.connect(transport("alpah")).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(McpError);
    expect((failed as McpError).code).toBe(ERRORS.NOT_FOUND.code);
    expect((failed as McpError).message).toContain('Project "alpah" does not exist — did you mean "alpha"?; the projects there are: alpha, beta');
    expect((failed as McpError).data).toMatchObject({ code: "NOT_FOUND", project: "alpah", projects: ["alpha", "beta"] });
    await client.close();

    // Nothing is left behind: an agent allowed two Spool connections is refused five times, then connects to a
    // project the server has and works in it.
    for (let i = 0; i < 5; i++) {
      const refused = sdkClient();
      await expect(refused.connect(transport("nope", agent))).rejects.toMatchObject({ code: ERRORS.NOT_FOUND.code });
      await refused.close();
    }
    // (A connection's close reaches the server a moment after the answer: until then it is still counted.)
    let known = sdkClient();
    await eventually(
      async () => {
        known = sdkClient();
        return await known.connect(transport("beta", agent)).then(
          () => true,
          () => false,
        );
      },
      10_000,
      "the agent's connections to be free",
    );
    expect((await known.listTools()).tools.map((t) => t.name)).toContain("run_command");
    const listed = await known.callTool({ name: "list_commands", arguments: {} });
    expect(listed.isError, JSON.stringify(listed)).toBeFalsy();
    await known.close();
  }, 60_000);

  it("a Spool connection whose initialize is refused is closed, not left counting against its principal", async () => {
    for (let i = 0; i < 3; i++)
      await expect(SpoolClient.open(serve.url, { token: other, reconnect: { project: "nope" } })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    // Their closes reach the server a moment later; a connection left open would hold its place for good.
    await eventually(
      async () =>
        await SpoolClient.open(serve.url, { token: other, reconnect: { project: "alpha" } }).then(
          (joined) => {
            joined.close();
            return true;
          },
          () => false,
        ),
      10_000,
      "the agent to join alpha",
    );
  }, 60_000);

  it("a 2026-07-28 request says the same, as its tool's error", async () => {
    const answer = await modern(url("gamma").href, "tools/call", { name: "list_commands", arguments: {} }, { token });
    const result = answer.body.result as { isError?: boolean; content: { text: string }[] };
    expect(result.isError).toBe(true);
    expect(result.content[0]!.text).toContain('Project "gamma" does not exist; the projects there are: alpha, beta');
  }, 60_000);
});
