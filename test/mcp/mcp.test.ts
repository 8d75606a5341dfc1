import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";
import { type McpProcess, resultText, startMcp } from "./harness.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("spool mcp driven by the MCP SDK's Client over stdio", () => {
  let ts: TestServer;
  let project: string;
  const running: McpProcess[] = [];
  const others: SpoolClient[] = [];
  const start = async (options: { name?: string; elicitation?: boolean; args?: string[] } = {}) => {
    const mcp = await startMcp({ args: ["--server", ts.server.url, "--project", project, ...(options.args ?? [])], env: { SPOOL_HOME: ts.home }, ...options });
    running.push(mcp);
    return mcp;
  };
  /** Another Spool client in the same project (a person at the web view or the CLI). */
  const person = async (name = "web view"): Promise<SpoolClient> => {
    const c = await ts.client();
    await c.initialize(undefined, { root: project, client: { name, version: "1.0" } });
    others.push(c);
    return c;
  };

  beforeAll(async () => {
    ts = await startTestServer({});
    project = mkdtempSync(join(tmpdir(), "spool-mcp-project-"));
  });
  afterEach(async () => {
    for (const m of running.splice(0)) await m.close().catch(() => undefined);
    for (const c of others.splice(0)) c.close();
  });
  afterAll(async () => {
    await ts.stop();
    rmSync(project, { recursive: true, force: true });
  });

  it("lists its tools with schemas and truthful annotations", async () => {
    const mcp = await start();
    const { tools } = await mcp.client.listTools();
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(Object.keys(byName).sort()).toEqual(["cancel", "list_commands", "read_output", "run_command", "send_input", "signal"]);
    expect(byName.run_command!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true, openWorldHint: true });
    expect(byName.read_output!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.list_commands!.annotations).toMatchObject({ readOnlyHint: true });
    for (const name of ["send_input", "signal", "cancel"]) expect(byName[name]!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    const schema = byName.run_command!.inputSchema as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(schema.properties).sort()).toEqual(["background", "command", "cwd", "env", "timeout_ms", "tty"]);
    expect(schema.required).toEqual(["command"]);
    expect(mcp.client.getServerCapabilities()?.resources).toMatchObject({ subscribe: true });
  });

  it("run_command: approved from another Spool client; progress comes before the result, which holds the model view", async () => {
    const mcp = await start({ name: "claude-code" });
    const web = await person();
    const proposed = web.next("run/proposal", (p) => p.command.includes("step"), 20_000);
    const progress: { progress: number; message?: string | undefined; at: number }[] = [];
    let order = 0;
    const call = mcp.client
      .callTool(
        {
          name: "run_command",
          arguments: { command: "printf 'step one\\n'; printf 'half\\rstep two\\n'; printf 'to stderr\\n' >&2; read line; echo got $line; exit 3" },
        },
        CallToolResultSchema,
        { onprogress: (p) => progress.push({ ...p, at: ++order }), timeout: 60_000 },
      )
      .then((r) => ({ result: r, at: ++order }));
    const p = await proposed;
    // The run is titled with the MCP client's name.
    const { run } = await web.call("run/get", { run: p.run });
    expect(run.title).toBe("claude-code");
    await eventually(() => progress.some((e) => e.message?.includes("waiting for a decision")), 10_000, "a waiting progress message");
    const resolved = await web.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    expect(resolved.status).toBe(200);
    await eventually(() => progress.some((e) => e.message?.includes("step two")), 15_000, "the output as progress");
    await web.input(p.run, p.path, "hello\n");
    const { result, at } = await call;
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((e) => e.at < at)).toBe(true);
    const text = resultText(result);
    expect(result.isError).toBeFalsy();
    expect(text).toContain("exit 3");
    expect(text).toContain("exit_code: 3");
    expect(text).toContain(`path: ${p.path}`);
    expect(text).toContain("accepted by web view");
    // The model view: what a terminal shows ("half" overwritten by the carriage return).
    const stdout = text.slice(text.indexOf("\n", text.indexOf("--- stdout")), text.indexOf("--- stderr"));
    expect(stdout).toContain("step one\nstep two\ngot hello");
    expect(stdout).not.toContain("half");
    expect(text).toContain("to stderr");
  });

  it("a rejected run_command is an error result naming who rejected it and why", async () => {
    const mcp = await start();
    const cli = await person("spool-cli");
    const proposed = cli.next("run/proposal", (p) => p.command === "rm -rf build", 20_000);
    const call = mcp.client.callTool({ name: "run_command", arguments: { command: "rm -rf build" } });
    const p = await proposed;
    await cli.call("run/resolve", { run: p.run, path: p.path, decision: "reject", reason: "not now" });
    const result = await call;
    expect(result.isError).toBe(true);
    expect(resultText(result)).toMatch(/^Rejected by spool-cli: not now\. The command did not run\./);
  });

  it("notifications/cancelled cancels the producer: the process is gone and the channels are 499", async () => {
    const mcp = await start();
    const web = await person();
    const proposed = web.next("run/proposal", (p) => p.command.includes("sleep 300"), 20_000);
    const controller = new AbortController();
    const call = mcp.client
      .callTool({ name: "run_command", arguments: { command: "echo started; exec sleep 300" } }, CallToolResultSchema, {
        signal: controller.signal,
        timeout: 60_000,
      })
      .catch((error: unknown) => error);
    const p = await proposed;
    const started = web.next("stream/started", (s) => s.path === p.path, 15_000);
    await web.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    const pid = Number((await started).process.pid);
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(true);
    const finished = web.next("stream/finished", (f) => f.path === p.path, 15_000);
    controller.abort("the agent gave up");
    expect(await call).toBeInstanceOf(Error);
    const f = await finished;
    expect(f.status).toBe(499);
    expect(f.outcome).toBe("cancelled");
    await eventually(() => !alive(pid), 10_000, "the process to die");
    const log = await web.call("entry/get", { run: p.run, path: p.path });
    expect(String(log.attributes.reason)).toContain("notifications/cancelled");
  });
});
