import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CallToolResultSchema, ResourceListChangedNotificationSchema, ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import { ENTRY } from "../../src/protocol/status.js";
import { type CommandEvent, RunnerClient } from "../../src/runners/client/runner-client.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { alive } from "../helpers/process.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";
import { type McpProcess, resultText, startMcp } from "./harness.js";

describe("spool mcp driven by the MCP SDK's Client over stdio", () => {
  let ts: TestServer;
  let project: string;
  const running: McpProcess[] = [];
  const others: SpoolClient[] = [];
  const start = async (options: { name?: string; elicitation?: boolean; args?: string[] } = {}) => {
    // Its elicitation decides only with a person's power: spool mcp asks for an agent's unless told --role person.
    const role = options.elicitation ? ["--role", "person"] : [];
    const mcp = await startMcp({
      ...options,
      args: ["--server", ts.server.url, "--project", project, ...role, ...(options.args ?? [])],
      env: { SPOOL_HOME: ts.home },
    });
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

  it("lists its tools with schemas and truthful annotations; a connection that only looks adds no run", async () => {
    const web = await person();
    const before = (await web.call("run/list", {})).runs.length;
    const mcp = await start();
    const { tools } = await mcp.client.listTools();
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(Object.keys(byName).sort()).toEqual(["cancel", "list_commands", "read_output", "run_command", "send_input", "signal"]);
    expect(byName.run_command!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true, openWorldHint: true });
    expect(byName.read_output!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.list_commands!.annotations).toMatchObject({ readOnlyHint: true });
    for (const name of ["send_input", "signal", "cancel"]) expect(byName[name]!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    const schema = byName.run_command!.inputSchema as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(schema.properties).sort()).toEqual(["allow_hosts", "background", "command", "cwd", "env", "runner", "timeout_ms", "tty"]);
    expect(schema.required).toEqual(["command"]);
    expect(mcp.client.getServerCapabilities()?.resources).toMatchObject({ subscribe: true });
    expect(resultText(await mcp.client.callTool({ name: "list_commands", arguments: {} }))).toBe("this connection has run no command yet");
    expect((await mcp.client.listResources()).resources).toEqual([]);
    const early = await mcp.client.callTool({ name: "read_output", arguments: { path: "log://turn_1/sh/ls" } });
    expect(early.isError).toBe(true);
    expect(resultText(early)).toContain("has run no command yet");
    expect((await web.call("run/list", {})).runs.length).toBe(before);
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
    expect(resolved.status).toBe(ENTRY.done);
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
    expect(text).toContain("accepted by admin via web view");
    // The model view: what a terminal shows ("half" overwritten by the carriage return).
    const stdout = text.slice(text.indexOf("\n", text.indexOf("--- stdout")), text.indexOf("--- stderr"));
    expect(stdout).toContain("step one\nstep two\ngot hello");
    expect(stdout).not.toContain("half");
    expect(text).toContain("to stderr");
  });

  it("run_command's result, its progress and read_output carry a bidi override (U+202E) as an escape, never the character", async () => {
    const mcp = await start();
    const web = await person();
    const proposed = web.next("run/proposal", (p) => p.command.includes("gnp.exe"), 20_000);
    const progress: string[] = [];
    const call = mcp.client.callTool(
      { name: "run_command", arguments: { command: "printf 'invoice_\\342\\200\\256gnp.exe\\n'; read line" } },
      CallToolResultSchema,
      { onprogress: (p) => void (p.message && progress.push(p.message)), timeout: 60_000 },
    );
    const p = await proposed;
    await web.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    await eventually(() => progress.some((m) => m.includes("gnp.exe")), 15_000, "the output as progress");
    await web.input(p.run, p.path, "\n");
    const text = resultText(await call);
    const read = resultText(await mcp.client.callTool({ name: "read_output", arguments: { path: p.path } }));
    for (const shown of [text, read, progress.find((m) => m.includes("gnp.exe"))!]) {
      expect(shown).toContain("invoice_\\u{202e}gnp.exe");
      expect(shown).not.toContain("\u202e");
    }
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
    expect(resultText(result)).toMatch(/^Rejected by admin via spool-cli: not now\. The command did not run\./);
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
    expect(f.status).toBe(ENTRY.cancelled);
    expect(f.outcome).toBe("cancelled");
    await eventually(() => !alive(pid), 10_000, "the process to die");
    const log = await web.call("entry/get", { run: p.run, path: p.path });
    expect(String(log.attributes.reason)).toContain("notifications/cancelled");
  });

  it("send_input types into a command running under a terminal", async () => {
    const mcp = await start();
    const web = await person();
    const proposed = web.next("run/proposal", (p) => p.command.includes("Name?"), 20_000);
    const progress: string[] = [];
    const call = mcp.client.callTool(
      { name: "run_command", arguments: { command: "printf 'Name? '; read name; echo \"hi $name\"", tty: true } },
      CallToolResultSchema,
      {
        onprogress: (p) => progress.push(p.message ?? ""),
        timeout: 60_000,
      },
    );
    const p = await proposed;
    expect(p.attributes.tty).toEqual({ cols: 120, rows: 40 });
    await web.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    await eventually(() => progress.some((m) => m.includes("Name?")), 15_000, "the prompt as progress");
    const sent = await mcp.client.callTool({ name: "send_input", arguments: { path: p.path, text: "Ada", keys: ["Enter"] } });
    expect(sent.isError).toBeFalsy();
    expect(resultText(sent)).toContain("sent 4 bytes");
    const result = await call;
    expect(resultText(result)).toContain("hi Ada");
    expect(resultText(result)).toContain("exit 0");
    // A key that is none is refused, and nothing is sent.
    const bad = await mcp.client.callTool({ name: "send_input", arguments: { path: p.path, keys: ["Hyper"] } });
    expect(bad.isError).toBe(true);
    expect(resultText(bad)).toContain('unknown key "Hyper"');
  });

  it("background: true returns once accepted; read_output reads it later, list_commands shows it, cancel stops it", async () => {
    const mcp = await start();
    const web = await person();
    const proposed = web.next("run/proposal", (p) => p.command.includes("tick"), 20_000);
    const call = mcp.client.callTool({ name: "run_command", arguments: { command: "for i in 1 2 3; do echo tick $i; done; read never", background: true } });
    const p = await proposed;
    // Proposed as background work: every client shows it, and it gets the longer time limit.
    expect(p.attributes.background).toBe(true);
    await web.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    const result = await call;
    expect(result.isError).toBeFalsy();
    expect(resultText(result)).toContain(`path: ${p.path}`);
    await expect(web.call("proposal/create", { run: p.run, tool: "sh", command: "true", background: "yes" as never })).rejects.toMatchObject({
      errorCode: "INVALID_PARAMS",
    });
    expect(resultText(result)).toContain(`resource: spool://${p.run}/${p.path}`);
    const running = await mcp.client.callTool({ name: "list_commands", arguments: { state: "running" } });
    expect(resultText(running)).toContain(`${p.path}  running`);
    let out = "";
    await eventually(
      async () => {
        out = resultText(await mcp.client.callTool({ name: "read_output", arguments: { path: p.path, tail: 2 } }));
        return out.includes("tick 3");
      },
      15_000,
      "the output to be readable",
    );
    expect(out).toContain("tick 2\ntick 3");
    expect(out).not.toContain("tick 1");
    const cancelled = await mcp.client.callTool({ name: "cancel", arguments: { path: `spool://${p.run}/${p.path}` } });
    expect(resultText(cancelled)).toContain("cancelled");
    const finished = await mcp.client.callTool({ name: "list_commands", arguments: { state: "finished" } });
    expect(resultText(finished)).toContain(`${p.path}  cancelled`);
    const missing = await mcp.client.callTool({ name: "read_output", arguments: { path: "log://turn_9/sh/nothing" } });
    expect(missing.isError).toBe(true);
  });

  it("resources: each command is spool://RUN/PATH; subscribe sends notifications/resources/updated as output arrives", async () => {
    const mcp = await start();
    const web = await person();
    const updates: string[] = [];
    let listChanged = 0;
    mcp.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
    mcp.client.setNotificationHandler(ResourceListChangedNotificationSchema, () => void listChanged++);
    const proposed = web.next("run/proposal", (p) => p.command.includes("line"), 20_000);
    const call = mcp.client.callTool({ name: "run_command", arguments: { command: "echo line one; read go; echo line two", background: true } });
    const p = await proposed;
    await web.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    await call;
    const uri = `spool://${p.run}/${p.path}`;
    const { resources } = await mcp.client.listResources();
    expect(resources.map((r) => r.uri)).toContain(uri);
    await eventually(() => listChanged > 0, 10_000, "resources/list_changed");
    await mcp.client.subscribeResource({ uri });
    await eventually(() => updates.includes(uri), 10_000, "an update for the stored output");
    const seen = updates.length;
    await web.input(p.run, p.path, "go\n");
    await eventually(() => updates.length > seen, 10_000, "an update for new output");
    await eventually(
      async () => {
        const read = await mcp.client.readResource({ uri });
        const body = String((read.contents[0] as { text?: string }).text);
        return body.includes("line two") && body.includes("exit 0");
      },
      10_000,
      "the resource to show the finished command",
    );
    await mcp.client.unsubscribeResource({ uri });
    await expect(mcp.client.readResource({ uri: "https://example.com/x" })).rejects.toThrow(/not a Spool resource/);
  });

  it("resources/subscribe to spool://RUN/proposals and spool://proposals: updated when a proposal appears there or is decided", async () => {
    const agent = await start({ name: "agent-one" });
    const other = await start({ name: "agent-two" });
    const watcher = await start({ name: "watcher" });
    const web = await person();
    const updates: string[] = [];
    watcher.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
    const first = web.next("run/proposal", (p) => p.command === "echo sub-one", 20_000);
    const call1 = agent.client.callTool({ name: "run_command", arguments: { command: "echo sub-one" } });
    const p1 = await first;
    const runUri = `spool://${p1.run}/proposals`;
    // The run's first (its listener is told of a change before the project's is).
    await watcher.client.subscribeResource({ uri: runUri });
    await watcher.client.subscribeResource({ uri: "spool://proposals" });

    // Decided: both are updated.
    await web.call("run/resolve", { run: p1.run, path: p1.path, decision: "accept" });
    await eventually(() => updates.includes(runUri) && updates.includes("spool://proposals"), 20_000, "updates for the decision");
    expect(resultText(await call1)).toContain("sub-one");

    // Another run's proposal appears: the project's resource only (the run's would have come first).
    updates.length = 0;
    const second = web.next("run/proposal", (p) => p.command === "echo sub-two", 20_000);
    const call2 = other.client.callTool({ name: "run_command", arguments: { command: "echo sub-two" } });
    const p2 = await second;
    expect(p2.run).not.toBe(p1.run);
    await eventually(() => updates.includes("spool://proposals"), 20_000, "the project's update for another run's proposal");
    expect(updates).not.toContain(runUri);
    const read = await watcher.client.readResource({ uri: "spool://proposals" });
    expect(String((read.contents[0] as { text?: string }).text)).toContain("echo sub-two");

    // One appears in the run: its resource is updated too.
    updates.length = 0;
    const third = web.next("run/proposal", (p) => p.command === "echo sub-three", 20_000);
    const call3 = agent.client.callTool({ name: "run_command", arguments: { command: "echo sub-three" } });
    const p3 = await third;
    await eventually(() => updates.includes(runUri), 20_000, "the run's update for its new proposal");

    // Unsubscribed: the run's resource is not updated again (the project's, still followed, comes after it would have).
    await watcher.client.unsubscribeResource({ uri: runUri });
    updates.length = 0;
    await web.call("run/resolve", { run: p3.run, path: p3.path, decision: "reject", reason: "not now" });
    await eventually(() => updates.includes("spool://proposals"), 20_000, "the project's update for the rejection");
    expect(updates).not.toContain(runUri);
    await web.call("run/resolve", { run: p2.run, path: p2.path, decision: "reject", reason: "not now" });
    expect((await call2).isError).toBe(true);
    expect((await call3).isError).toBe(true);
    await watcher.client.unsubscribeResource({ uri: "spool://proposals" });
  });

  it("elicitation: the approval is asked in the MCP client too, with every fact; its answer decides", async () => {
    const mcp = await start({ elicitation: true, name: "codex" });
    const call = mcp.client.callTool(
      { name: "run_command", arguments: { command: "echo elicited", env: { GREETING: "hi\u001b[31m" }, cwd: "." } },
      CallToolResultSchema,
      { timeout: 60_000 },
    );
    const ask = await mcp.elicitation();
    expect(ask.message).toContain("command     echo elicited");
    expect(ask.message).toContain("env         GREETING='hi\\e[31m'");
    expect(ask.message).toMatch(/runner\s+default \(local; this server's own runner\)/);
    expect(ask.message).toMatch(/sandbox\s+/);
    ask.answer({ action: "accept", content: { decision: "accept" } });
    const result = await call;
    expect(resultText(result)).toContain("accepted by admin via codex (spool mcp)");
    expect(resultText(result)).toContain("elicited");
  });

  it("--runner NAME: every command is proposed for that runner, shown as such (elicitation included), and runs there; run_command's runner overrides it", async () => {
    const web = await person();
    const { projects } = await web.call("project/list", {});
    const name = projects.find((p) => realpathSync(p.root) === realpathSync(project))!.name;
    const events: CommandEvent[] = [];
    const second = new RunnerClient({
      connect: () => SpoolClient.connect(ts.server.url, { token: ts.server.token }),
      project: name,
      name: "second",
      backend: new LocalBackend(),
      log: createLogger("silent"),
      onCommand: (event) => events.push(event),
    });
    await second.start();
    try {
      const mcp = await start({ elicitation: true, args: ["--runner", "second"] });
      const proposed = web.next("run/proposal", (p) => p.command === "echo where", 20_000);
      const call = mcp.client.callTool({ name: "run_command", arguments: { command: "echo where" } }, CallToolResultSchema, { timeout: 60_000 });
      const p = await proposed;
      expect(p.attributes.runner).toBe("second");
      const ask = await mcp.elicitation();
      expect(ask.message).toMatch(/^runner +second \(attached by \w+ "[^"]+", claims [^)]*\)$/m);
      ask.answer({ action: "accept", content: { decision: "accept" } });
      const text = resultText(await call);
      expect(text).toContain("runs on second");
      expect(text).toContain("where");
      expect((await web.call("entry/get", { run: p.run, path: p.path })).attributes.runner).toBe("second");
      expect(events).toContainEqual(expect.objectContaining({ kind: "started", path: p.path, command: "echo where" }));
      // A run_command's own runner wins over --runner; accepting it on another runner than shown is refused.
      const local = web.next("run/proposal", (q) => q.command === "echo here", 20_000);
      const call2 = mcp.client.callTool({ name: "run_command", arguments: { command: "echo here", runner: "local" } }, CallToolResultSchema, {
        timeout: 60_000,
      });
      const q = await local;
      expect(q.attributes.runner).toBe("local");
      expect((await mcp.elicitation()).message).toMatch(/^runner +local \(this server's own runner\)$/m);
      await expect(web.call("run/resolve", { run: q.run, path: q.path, decision: "accept", runner: "second" })).rejects.toMatchObject({
        errorCode: "CONFLICT",
      });
      expect((await web.call("run/resolve", { run: q.run, path: q.path, decision: "accept" })).runner).toBe("local");
      expect(resultText(await call2)).toContain("runs on local");
      expect(events.some((e) => e.path === q.path)).toBe(false);
      // An unknown runner: an error result, and nothing is proposed.
      const before = (await web.call("proposal/list", {})).proposals.length;
      const unknown = await mcp.client.callTool({ name: "run_command", arguments: { command: "echo nowhere", runner: "nope" } });
      expect(unknown.isError).toBe(true);
      expect(resultText(unknown)).toMatch(/No runner named "nope".*attached: local, second/);
      expect((await web.call("proposal/list", {})).proposals.length).toBe(before);
    } finally {
      await second.stop();
    }
  });

  it("elicitation: another client decides first and the elicitation is withdrawn; a decline rejects", async () => {
    const mcp = await start({ elicitation: true });
    const web = await person();
    const proposed = web.next("run/proposal", (p) => p.command === "echo first wins", 20_000);
    const call = mcp.client.callTool({ name: "run_command", arguments: { command: "echo first wins" } }, CallToolResultSchema, { timeout: 60_000 });
    const ask = await mcp.elicitation();
    const p = await proposed;
    const withdrawn = new Promise<void>((resolve) => ask.signal.addEventListener("abort", () => resolve(), { once: true }));
    await web.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    await withdrawn;
    expect(resultText(await call)).toContain("accepted by admin via web view");

    const second = mcp.client.callTool({ name: "run_command", arguments: { command: "echo declined" } });
    const ask2 = await mcp.elicitation(8000);
    ask2.answer({ action: "decline" });
    const rejected = await second;
    expect(rejected.isError).toBe(true);
    expect(resultText(rejected)).toContain("Rejected by admin via test-agent (spool mcp): declined in test-agent");
  });

  it("closing the connection rejects the proposals still waiting, cancels the commands it was waiting on, leaves background commands running", async () => {
    const mcp = await start();
    const web = await person();
    const bg = web.next("run/proposal", (p) => p.command.includes("keep going"), 20_000);
    const background = mcp.client.callTool({ name: "run_command", arguments: { command: "echo keep going; read forever", background: true } });
    const b = await bg;
    await web.call("run/resolve", { run: b.run, path: b.path, decision: "accept" });
    await background;
    const fg = web.next("run/proposal", (p) => p.command === "echo in front; read x", 20_000);
    void mcp.client.callTool({ name: "run_command", arguments: { command: "echo in front; read x" } }).catch(() => undefined);
    const f = await fg;
    const started = web.next("stream/started", (s) => s.path === f.path, 20_000);
    await web.call("run/resolve", { run: f.run, path: f.path, decision: "accept" });
    await started;
    const foregroundEnded = web.next("stream/finished", (e) => e.path === f.path, 20_000);
    const waiting = web.next("run/proposal", (p) => p.command === "echo never decided", 20_000);
    void mcp.client.callTool({ name: "run_command", arguments: { command: "echo never decided" } }).catch(() => undefined);
    const w = await waiting;
    const rejected = web.next("run/resolved", (r) => r.path === w.path, 20_000);
    await mcp.close();
    const r = await rejected;
    expect(r.decision).toBe("reject");
    expect(r.reason).toContain("closed the connection");
    // The command the closed connection was waiting on is cancelled; the background one goes on.
    const ended = await foregroundEnded;
    expect(ended.status).toBe(ENTRY.cancelled);
    expect(ended.reason).toContain("closed the connection");
    const log = await web.call("entry/get", { run: b.run, path: b.path });
    expect(log.attributes.status).toBeUndefined();
    const channels = await web.call("entry/list", { run: b.run, status: ENTRY.streaming });
    expect(channels.entries.some((e) => e.attributes.log === b.path)).toBe(true);
    await web.call("stream/cancel", { run: b.run, path: b.path });
  });

  it("a big output comes back as the model sees it: head and tail, the failure from the middle with its line number, a note of what was left out", async () => {
    const mcp = await start();
    const web = await person();
    const command =
      'i=0; while [ $i -lt 30000 ]; do i=$((i+1)); if [ $i -eq 15000 ]; then echo "error: disk quota exceeded at step $i"; else echo "step $i ok"; fi; done';
    const proposed = web.next("run/proposal", (p) => p.command === command, 20_000);
    const call = mcp.client.callTool({ name: "run_command", arguments: { command } }, CallToolResultSchema, { timeout: 120_000 });
    const p = await proposed;
    await web.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    const text = resultText(await call);
    expect(text).toContain("exit 0");
    expect(text).toContain("step 1 ok");
    expect(text).toContain("step 30000 ok");
    expect(text).toContain("[line 15000] error: disk quota exceeded at step 15000");
    expect(text).toMatch(/left out \(30000 lines in all\); read them with read_output: \{"path": "sh:\/\/turn_1\/[^"]+_1", "line": \d+, "limit": 200\}/);
    expect(text).not.toContain("step 14000 ok");
    expect(text.length).toBeLessThan(60_000);
    const all = resultText(await mcp.client.callTool({ name: "read_output", arguments: { path: p.path } }));
    expect(all).toContain("[line 15000] error: disk quota exceeded");
    expect(all.length).toBeLessThan(60_000);
    // The whole output stays readable by slices.
    const slice = await mcp.client.callTool({ name: "read_output", arguments: { path: p.path, line: 14000, limit: 2 } });
    expect(resultText(slice)).toContain("step 14000 ok\nstep 14001 ok");
    // entry/get's budget is for the whole entry as the model sees it: with a slice, or the raw view, it is refused.
    const stdout = `${p.path.replace(/^log:\/\/(turn_\d+)\/sh\//, "sh://$1/")}_1`;
    for (const bad of [{ view: "model", budget: 500, tail: 5 }, { view: "raw", budget: 500 }, { budget: 500 }, { view: "model", budget: 10 }])
      await expect(web.call("entry/get", { run: p.run, path: stdout, ...(bad as object) })).rejects.toMatchObject({ errorCode: "INVALID_PARAMS" });
    const small = await web.call("entry/get", { run: p.run, path: stdout, view: "model", budget: 500 });
    expect(small.body.length).toBeLessThan(4_000);
    expect(small.body).toContain("[line 15000] error: disk quota exceeded");
  });
});
