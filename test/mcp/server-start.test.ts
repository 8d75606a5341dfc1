import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { alive, freePort } from "../helpers/process.js";
import { eventually, startTestServer, tempDir } from "../helpers/server.js";
import { resultText, startMcp } from "./harness.js";

/** A port nothing listens on right now. */
it("spool mcp starts a detached spool serve for its home when none answers; the server and the run outlive it", async () => {
  const home = tempDir("spool-mcp-home-");
  const project = mkdtempSync(join(tmpdir(), "spool-mcp-started-"));
  const port = await freePort();
  let serverPid = 0;
  const mcp = await startMcp({ args: ["--project", project], env: { SPOOL_HOME: home, SPOOL_PORT: String(port) } });
  try {
    // The first tool call waits for the server it started.
    expect(resultText(await mcp.client.callTool({ name: "list_commands", arguments: {} }))).toBe("this connection has run no command yet");
    serverPid = (JSON.parse(readFileSync(join(home, "spool.lock"), "utf8")) as { pid: number }).pid;
    expect(readFileSync(join(home, "serve.log"), "utf8")).toContain(`Spool listening on ws://127.0.0.1:${port}/`);
    // Never a server the person cannot see: said on stderr whatever the log level (address, home, pid, how to decide),
    // and the MCP client learns whose server it is from the instructions.
    expect(mcp.stderr()).toContain(
      `spool: no Spool server answered for the home ${home}, so its own was started (spool serve --home ${home}, pid ${serverPid})`,
    );
    expect(mcp.stderr()).toContain(`SPOOL_HOME=${home} spool pending`);
    expect(mcp.client.getInstructions()).toContain(`Its Spool server is the one of the home ${home}`);
    const person = await SpoolClient.connect(`ws://127.0.0.1:${port}/`, { token: readFileSync(join(home, "token"), "utf8").trim() });
    await person.initialize(undefined, { root: project, client: { name: "web view", version: "1" } });
    const proposed = person.next("run/proposal", (p) => p.command === "echo started here", 20_000);
    const call = mcp.client.callTool({ name: "run_command", arguments: { command: "echo started here", background: true } });
    const p = await proposed;
    await person.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    await call;
    await mcp.close();
    expect(alive(serverPid)).toBe(true);
    expect((await person.call("run/get", { run: p.run })).run.title).toBe("test-agent");
    person.close();
  } finally {
    await mcp.close().catch(() => undefined);
    if (serverPid && alive(serverPid)) {
      process.kill(serverPid, "SIGTERM");
      await eventually(() => !alive(serverPid), 20_000, "the started server to stop");
    }
    rmSync(home, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  }
});

it("with --server and nothing answering there, a tool call is an error result saying so; the next call connects once a server answers", async () => {
  const home = tempDir("spool-mcp-late-");
  const project = mkdtempSync(join(tmpdir(), "spool-mcp-late-project-"));
  const port = await freePort();
  const mcp = await startMcp({ args: ["--server", `ws://127.0.0.1:${port}/`, "--project", project], env: { SPOOL_HOME: home } });
  let ts: Awaited<ReturnType<typeof startTestServer>> | null = null;
  try {
    const refused = await mcp.client.callTool({ name: "list_commands", arguments: {} });
    expect(refused.isError).toBe(true);
    expect(resultText(refused)).toContain(`No Spool server answers at ws://127.0.0.1:${port}/`);
    ts = await startTestServer({ home, port });
    expect(resultText(await mcp.client.callTool({ name: "list_commands", arguments: {} }))).toBe("this connection has run no command yet");
  } finally {
    await mcp.close();
    await ts?.stop();
    rmSync(home, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  }
});

it("a spool serve it starts that dies (its port is taken) is reported at once, with what the server said, not after the 30 s wait", async () => {
  const home = tempDir("spool-mcp-dies-");
  const project = mkdtempSync(join(tmpdir(), "spool-mcp-dies-project-"));
  // Something else (not Spool) holds the port the home's server would listen on.
  const squatter = createServer((_request, response) => response.writeHead(404).end());
  const port = await new Promise<number>((resolve) => squatter.listen(0, "127.0.0.1", () => resolve((squatter.address() as { port: number }).port)));
  const mcp = await startMcp({ args: ["--project", project], env: { SPOOL_HOME: home, SPOOL_PORT: String(port) } });
  try {
    const started = Date.now();
    const refused = await mcp.client.callTool({ name: "list_commands", arguments: {} });
    expect(refused.isError).toBe(true);
    expect(resultText(refused)).toMatch(/Started spool serve for .*, but it exited/);
    expect(resultText(refused)).toMatch(/EADDRINUSE|in use/i);
    expect(Date.now() - started).toBeLessThan(20_000);
  } finally {
    await mcp.close();
    squatter.close();
    rmSync(home, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  }
}, 60_000);
