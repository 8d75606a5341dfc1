import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SessionUpdate } from "@agentclientprotocol/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { factLines, proposalFacts } from "../../src/protocol/proposal-facts.js";
import { ENTRY, RUN } from "../../src/protocol/status.js";
import { alive, freePort } from "../helpers/process.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";
import { type AcpProcess, agentText, initialize, spawnAcp } from "./harness.js";

const modelEnv = (model: ScriptedModel) => ({ SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" });

type ToolUpdate = Extract<SessionUpdate, { sessionUpdate: "tool_call_update" }>;
const isUpdateOf =
  (id: string) =>
  (u: SessionUpdate): u is ToolUpdate =>
    u.sessionUpdate === "tool_call_update" && u.toolCallId === id;
const meta = (u: SessionUpdate) =>
  ((u as { _meta?: Record<string, { data?: string; exit_code?: number | null }> })._meta ?? {}) as Record<string, { data?: string; exit_code?: number | null }>;
const textOf = (u: ToolUpdate) => (u.content ?? []).map((c) => (c.type === "content" && c.content.type === "text" ? c.content.text : "")).join("");

/** A port nothing listens on right now. */
describe("spool acp driven by the ACP SDK's client", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  let project: string;
  const running: AcpProcess[] = [];
  /** `spool acp` against the test server (SPOOL_HOME holds its token). */
  const start = (args: string[] = []) => {
    const acp = spawnAcp({ args: ["--server", ts.server.url, ...args], env: { SPOOL_HOME: ts.home } });
    running.push(acp);
    return acp;
  };
  /** A plain Spool client in the project the editor's sessions use. */
  const spool = async (name: string): Promise<SpoolClient> => {
    const c = await ts.client();
    await c.initialize(undefined, { root: project, client: { name, version: "1.0" } });
    return c;
  };

  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: modelEnv(model), agent: { toolYieldMs: 60_000 } });
    project = mkdtempSync(join(tmpdir(), "spool-acp-project-"));
  });
  afterEach(async () => {
    for (const acp of running.splice(0)) await acp.stop("SIGKILL");
    model.reset();
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
    rmSync(project, { recursive: true, force: true });
  });

  it("a whole prompt turn: text, a tool call, its permission, the command's output as a terminal, end_turn", async () => {
    const acp = start();
    const init = await initialize(acp, { name: "zed", terminal: true });
    expect(init.protocolVersion).toBe(1);
    expect(init.agentCapabilities).toMatchObject({
      loadSession: true,
      promptCapabilities: { embeddedContext: true },
      sessionCapabilities: { list: {}, resume: {}, close: {} },
    });
    const session = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    expect(session.sessionId).toMatch(/^spool-acp-project-[^/]+\/run-\d+$/);
    expect(session.configOptions?.map((o) => [o.id, o.currentValue])).toEqual([
      ["mode", "act"],
      ["model", "test"],
    ]);
    const command = "printf 'one\\n'; sleep 0.3; printf 'two\\n'; exit 3";
    model.reply(
      { text: "Let me check. ", tools: [{ id: "call_run", name: "sh", arguments: { command } }] },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "It prints two lines and exits 3." } }] },
    );
    const watcher = await spool("watcher");
    const resolved = watcher.next("run/resolved", () => true, 20_000);
    const prompt = acp.connection.agent.request("session/prompt", { sessionId: session.sessionId, prompt: [{ type: "text", text: "What does it do?" }] });

    const ask = await acp.permission();
    const toolCall = acp.events.findIndex((e) => e.kind === "update" && e.update.sessionUpdate === "tool_call");
    expect(toolCall).toBeGreaterThanOrEqual(0);
    expect(toolCall).toBeLessThan(ask.at);
    const call = (acp.events[toolCall] as { update: SessionUpdate }).update;
    expect(call).toMatchObject({
      sessionUpdate: "tool_call",
      toolCallId: "call_run",
      title: command,
      kind: "execute",
      status: "pending",
      content: [{ type: "terminal", terminalId: "call_run" }],
      _meta: { terminal_info: { terminal_id: "call_run", cwd: project } },
    });
    expect(agentText(acp.updates().slice(0, toolCall))).toBe("Let me check. ");
    expect(ask.params.toolCall).toMatchObject({ toolCallId: "call_run", title: command });
    expect(ask.params.options.map((o) => o.kind)).toEqual(["allow_once", "allow_always", "reject_once"]);
    ask.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });

    expect(await prompt).toEqual({ stopReason: "end_turn" });
    expect(await resolved).toMatchObject({
      decision: "accept",
      resolvedBy: "admin via zed (spool acp)",
      resolver: { kind: "connection", client: "zed (spool acp)" },
    });
    const updates = acp.updates(session.sessionId).filter(isUpdateOf("call_run"));
    expect(updates[0]).toMatchObject({ status: "in_progress" });
    expect(updates.map((u) => meta(u).terminal_output?.data ?? "").join("")).toBe("one\ntwo\n");
    const last = updates.at(-1)!;
    expect(last).toMatchObject({ status: "failed", _meta: { terminal_exit: { terminal_id: "call_run", exit_code: 3 } } });
    expect(agentText(acp.updates())).toBe("Let me check. \n\nIt prints two lines and exits 3.");
    expect(acp.updates().find((u) => u.sessionUpdate === "session_info_update")).toMatchObject({ title: "What does it do?" });
    expect(toolResult(model.requests[1]!, "call_run")).toContain("exit code: 3");
    expect(acp.stderr()).toBe("");
  });

  it("without terminal_output the output arrives as snapshots of the model view; always allow stores a rule the next proposal uses", async () => {
    const acp = start();
    await initialize(acp, { name: "plain-editor" });
    const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    model.reply({ tools: [{ id: "call_a", name: "sh", arguments: { command: "printf 'snap\\033[31m red\\033[0m\\n'" } }] }, { text: "ok" });
    const first = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "first" }] });
    (await acp.permission()).answer({ outcome: { outcome: "selected", optionId: "allow_always" } });
    expect(await first).toEqual({ stopReason: "end_turn" });
    const done = acp.updates(sessionId).filter(isUpdateOf("call_a")).at(-1)!;
    expect(done.status).toBe("completed");
    expect(textOf(done)).toContain("```\nsnap red\n```");
    expect(textOf(done)).toContain("exit 0");
    expect(JSON.stringify(acp.updates(sessionId))).not.toContain("terminal_output");

    // The same command again: the server's rule accepts it, nobody is asked.
    const from = acp.events.length;
    model.reply({ tools: [{ id: "call_b", name: "sh", arguments: { command: "printf 'snap\\033[31m red\\033[0m\\n'" } }] }, { text: "again" });
    expect(await acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "second" }] })).toEqual({ stopReason: "end_turn" });
    expect(acp.events.slice(from).some((e) => e.kind === "permission")).toBe(false);
    await acp.update((u) => isUpdateOf("call_b")(u) && u.status === "completed", from);
  });

  it("another Spool client decides first: the permission request is withdrawn, the tool call shows who rejected it and why, a late answer changes nothing", async () => {
    const acp = start();
    await initialize(acp, { name: "zed", terminal: true });
    const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    const run = sessionId.split("/")[1]!;
    const phone = await spool("phone");
    model.reply({ tools: [{ id: "call_rm", name: "sh", arguments: { command: "rm -rf build" } }] }, { text: "Understood." });
    const prompt = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "clean" }] });
    const ask = await acp.permission();
    const { proposals } = await phone.call("proposal/list", { run });
    expect(proposals).toHaveLength(1);
    await phone.call("run/resolve", { run, path: proposals[0]!.path, decision: "reject", reason: "not on a Friday" });
    await new Promise<void>((resolve) => (ask.signal.aborted ? resolve() : ask.signal.addEventListener("abort", () => resolve(), { once: true })));
    const rejected = await acp.update((u) => isUpdateOf("call_rm")(u) && u.status === "failed");
    expect(textOf(rejected as ToolUpdate)).toBe("rejected by admin via phone: not on a Friday");
    // The editor answers anyway, late: nothing changes and nothing is reported.
    ask.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    expect(await prompt).toEqual({ stopReason: "end_turn" });
    expect((await phone.call("entry/get", { run, path: proposals[0]!.path })).status).toBe(ENTRY.rejected);
    await phone.call("ping", {});
    expect(acp.stderr()).toBe("");
  });

  it("a proposal another Spool client makes into the session's run: the permission request shows every fact, escaped, as text and in rawInput", async () => {
    const acp = start();
    await initialize(acp, { name: "zed", terminal: true });
    const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    const run = sessionId.split("/")[1]!;
    mkdirSync(join(project, "sub"), { recursive: true });
    const phone = await spool("phone");
    const env = { HOOK: "./x\u001b[8m.sh", MODE: "fast" };
    // Proposed for a runner by name: that runner is shown, not "default".
    const { path } = await phone.call("proposal/create", { run, tool: "sh", command: "ls", cwd: "sub", env, tty: { cols: 100, rows: 30 }, runner: "local" });
    const ask = await acp.permission();
    const call = ask.params.toolCall;
    expect(call).toMatchObject({ title: "ls", kind: "execute", status: "pending" });
    const shown = (call.content ?? []).flatMap((c) => (c.type === "content" && c.content.type === "text" ? [c.content.text] : [])).join("\n");
    // What the editor shows: each fact on its own line, control characters escaped, in a code block.
    expect(shown).toMatch(/^```\n/);
    expect(shown).toContain("command     ls");
    expect(shown).toContain("cwd         sub");
    expect(shown).toContain("env         HOOK='./x\\e[8m.sh' MODE=fast");
    expect(shown).toContain("tty         100×30");
    // The embedded runner's sandbox is the server's own, and says so (a remote runner's is shown as its claim).
    expect(shown).toContain("runner      local (this server's own runner)\n");
    expect(shown).not.toContain("\u001b");
    const { attributes } = await phone.call("entry/get", { run, path });
    const facts = proposalFacts(attributes);
    for (const line of factLines(facts, { defaultRunner: "local" })) expect(shown).toContain(`${line.label.padEnd(10)}  ${line.value}`);
    expect(shown).toMatch(/sandbox {5}(read-only|workspace-write|full) \(/);
    // The terminal the editor shows the output in stays after the facts.
    expect(call.content?.at(-1)).toEqual({ type: "terminal", terminalId: path });
    expect(call.rawInput).toMatchObject({
      tool: "sh",
      command: "ls",
      cwd: "sub",
      env,
      tty: { cols: 100, rows: 30 },
      runner: "local",
      sandbox: facts.sandbox.mode,
      background: false,
    });
    // Only a proposal that names no runner says which one a decision would pick.
    expect(call.rawInput).not.toHaveProperty("defaultRunner");
    ask.answer({ outcome: { outcome: "selected", optionId: "reject_once" } });
    await eventually(async () => (await phone.call("entry/get", { run, path })).status === ENTRY.rejected, 20_000, "the rejection");
    expect(acp.stderr()).toBe("");
  });

  it("session/cancel during a running command kills it and answers the prompt cancelled", async () => {
    const acp = start();
    await initialize(acp, { name: "zed", terminal: true });
    const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    const run = sessionId.split("/")[1]!;
    const watcher = await spool("watcher");
    model.reply({ tools: [{ id: "call_long", name: "sh", arguments: { command: "echo started; sleep 300" } }] });
    const prompt = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "wait a long time" }] });
    (await acp.permission()).answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    await acp.update((u) => isUpdateOf("call_long")(u) && meta(u).terminal_output?.data === "started\n");
    const proposals = (await watcher.call("entry/list", { run, pattern: "log://*" })).entries;
    let pid = 0;
    await eventually(async () => {
      const log = await watcher.call("entry/get", { run, path: proposals[0]!.path });
      pid = (log.attributes.process as { pid?: number } | undefined)?.pid ?? 0;
      return pid > 0;
    });
    expect(alive(pid)).toBe(true);

    await acp.connection.agent.notify("session/cancel", { sessionId });
    expect(await prompt).toEqual({ stopReason: "cancelled" });
    await eventually(() => !alive(pid), 10_000, "the command's process to be gone");
    expect((await watcher.call("run/get", { run })).run.status).toBe(RUN.aborted);
    const last = await acp.update((u) => isUpdateOf("call_long")(u) && u.status === "failed");
    expect(meta(last).terminal_exit).toMatchObject({ terminal_id: "call_long" });
  });

  it("session/load after spool acp was killed and restarted replays the run, and a proposal left waiting is asked again", async () => {
    const first = start();
    await initialize(first, { name: "zed" });
    const { sessionId } = await first.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    const run = sessionId.split("/")[1]!;
    model.reply({ text: "Listing. ", tools: [{ id: "call_ls", name: "sh", arguments: { command: "echo listed" } }] }, { text: "Listed it." });
    const prompt = first.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "Restartable title\nmore" }] });
    (await first.permission()).answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    expect(await prompt).toEqual({ stopReason: "end_turn" });
    // A second turn stops at a proposal; then the editor's agent process dies.
    model.reply({ tools: [{ id: "call_wait", name: "sh", arguments: { command: "echo after-restart" } }] }, { text: "Done after the restart." });
    void first.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "second" }] }).catch(() => undefined);
    await first.permission();
    await first.stop("SIGKILL");

    const watcher = await spool("watcher");
    expect((await watcher.call("run/get", { run })).run.status).toBe(RUN.waiting);
    const second = start();
    await initialize(second, { name: "zed" });
    const { sessions } = await second.connection.agent.request("session/list", { cwd: project });
    expect(sessions.find((s) => s.sessionId === sessionId)).toMatchObject({ cwd: project, title: "Restartable title" });
    const loaded = await second.connection.agent.request("session/load", { sessionId, cwd: project, mcpServers: [] });
    expect(loaded.configOptions?.find((o) => o.id === "model")?.currentValue).toBe("test");
    const replay = second.updates(sessionId);
    expect(replay.filter((u) => u.sessionUpdate === "user_message_chunk").map((u) => (u.content.type === "text" ? u.content.text : ""))).toEqual([
      "Restartable title\nmore",
      "second",
    ]);
    expect(agentText(replay)).toBe("Listing. Listed it.");
    expect(replay.find((u) => u.sessionUpdate === "tool_call" && u.toolCallId === "call_ls")).toMatchObject({ title: "echo listed", kind: "execute" });
    const ls = replay.filter(isUpdateOf("call_ls")).at(-1)!;
    expect(ls.status).toBe("completed");
    expect(textOf(ls)).toContain("listed");

    const ask = await second.permission();
    expect(ask.params.toolCall).toMatchObject({ toolCallId: "call_wait", title: "echo after-restart" });
    ask.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    await second.update((u) => isUpdateOf("call_wait")(u) && u.status === "completed");
    await eventually(async () => (await watcher.call("run/get", { run })).run.status === RUN.done, 20_000, "the run to finish");
    expect(toolResult(model.requests.at(-1)!, "call_wait")).toContain("after-restart");
  });

  it("a loop that fails answers the prompt with its error; a closed session is gone from the bridge while its run stays", async () => {
    const acp = start();
    await initialize(acp);
    const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    model.reply({ status: 400, body: { error: { message: "the model refuses this test" } } });
    await expect(acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "fail" }] })).rejects.toMatchObject({
      code: -32603,
      message: expect.stringContaining("the model refuses this test"),
    });
    await acp.connection.agent.request("session/close", { sessionId });
    await expect(acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "again" }] })).rejects.toMatchObject({
      code: -32002,
    });
    const watcher = await spool("watcher");
    expect((await watcher.call("run/get", { run: sessionId.split("/")[1]! })).run.status).toBe(RUN.failed);
    // Resuming brings it back without a replay.
    const from = acp.events.length;
    await acp.connection.agent.request("session/resume", { sessionId, cwd: project });
    expect(acp.events.length).toBe(from);
    model.reply({ text: "fine now" });
    expect(await acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "again" }] })).toEqual({ stopReason: "end_turn" });
  });

  it("bad requests get clear errors and change nothing", async () => {
    const acp = start();
    await initialize(acp);
    const agent = acp.connection.agent;
    await expect(agent.request("session/new", { cwd: "relative/dir", mcpServers: [] })).rejects.toMatchObject({ code: -32602 });
    await expect(agent.request("session/prompt", { sessionId: "nope/run-1", prompt: [{ type: "text", text: "x" }] })).rejects.toMatchObject({ code: -32002 });
    await expect(agent.request("session/load", { sessionId: "no-such-project/run-1", cwd: project, mcpServers: [] })).rejects.toMatchObject({ code: -32002 });
    await expect(agent.request("session/load", { sessionId: "not-an-id", cwd: project, mcpServers: [] })).rejects.toMatchObject({ code: -32002 });
    const { sessionId } = await agent.request("session/new", { cwd: project, mcpServers: [] });
    await expect(agent.request("session/load", { sessionId: `${sessionId.split("/")[0]}/missing-run`, cwd: project, mcpServers: [] })).rejects.toMatchObject({
      code: -32002,
    });
    await expect(agent.request("session/set_config_option", { sessionId, configId: "mode", value: "yolo" })).rejects.toMatchObject({ code: -32602 });
    await expect(agent.request("session/set_config_option", { sessionId, configId: "model", value: "nope" })).rejects.toMatchObject({ code: -32602 });
    await expect(agent.request("session/set_config_option", { sessionId, configId: "colour", value: "blue" })).rejects.toMatchObject({ code: -32602 });
    const set = await agent.request("session/set_config_option", { sessionId, configId: "mode", value: "ask" });
    expect(set.configOptions.find((o) => o.id === "mode")?.currentValue).toBe("ask");
    await expect(agent.request("session/prompt", { sessionId, prompt: [{ type: "image", data: "AAAA", mimeType: "image/png" }] })).rejects.toMatchObject({
      code: -32602,
    });
    await expect(agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "   " }] })).rejects.toMatchObject({ code: -32602 });
    const watcher = await spool("watcher");
    const run = sessionId.split("/")[1]!;
    expect((await watcher.call("run/history", { run })).messages).toEqual([]);
    expect(model.requests).toEqual([]);
  });
});

describe("spool acp and its server", () => {
  it("starts a detached spool serve for its home when none answers; the server and the run outlive the agent process", async () => {
    const model = await ScriptedModel.start();
    const home = tempDir("spool-acp-home-");
    const project = mkdtempSync(join(tmpdir(), "spool-acp-started-"));
    const port = await freePort();
    const env = { SPOOL_HOME: home, SPOOL_PORT: String(port), ...modelEnv(model) };
    const acp = spawnAcp({ env });
    let serverPid = 0;
    try {
      await initialize(acp);
      const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
      serverPid = (JSON.parse(readFileSync(join(home, "spool.lock"), "utf8")) as { pid: number }).pid;
      expect(serverPid).not.toBe(acp.child.pid);
      // It runs as `spool serve` does: with the node flags and the malloc variables of bin/spool.js's shebang.
      expect(readFileSync(`/proc/${serverPid}/cmdline`, "utf8").split("\0")).toContain("--max-semi-space-size=2");
      expect(readFileSync(`/proc/${serverPid}/environ`, "utf8").split("\0")).toContain("MALLOC_ARENA_MAX=1");
      expect(readFileSync(join(home, "serve.log"), "utf8")).toContain(`Spool listening on ws://127.0.0.1:${port}/`);
      expect(await acp.stop("SIGTERM")).toBe(0);
      expect(alive(serverPid)).toBe(true);

      const other = await SpoolClient.connect(`ws://127.0.0.1:${port}/`, { token: readFileSync(join(home, "token"), "utf8").trim() });
      await other.initialize(undefined, { root: project, create: false });
      expect((await other.call("run/get", { run: sessionId.split("/")[1]! })).run.model).toBe("test");
      other.close();

      // A second bridge uses the running server instead of starting another.
      const again = spawnAcp({ env });
      try {
        await initialize(again);
        const { sessions } = await again.connection.agent.request("session/list", { cwd: project });
        expect(sessions.map((s) => s.sessionId)).toEqual([sessionId]);
        expect((JSON.parse(readFileSync(join(home, "spool.lock"), "utf8")) as { pid: number }).pid).toBe(serverPid);
      } finally {
        await again.stop();
      }
    } finally {
      await acp.stop("SIGKILL");
      if (serverPid && alive(serverPid)) {
        process.kill(serverPid, "SIGTERM");
        await eventually(() => !alive(serverPid), 20_000, "the started server to stop");
      }
      await model.close();
      rmSync(home, { recursive: true, force: true });
      rmSync(project, { recursive: true, force: true });
    }
  });

  it("an explicit --server that does not answer is an error at the first session, and nothing is started", async () => {
    const home = tempDir("spool-acp-home-");
    const port = await freePort();
    const acp = spawnAcp({ args: ["--server", `ws://127.0.0.1:${port}/`], env: { SPOOL_HOME: home } });
    try {
      await initialize(acp);
      await expect(acp.connection.agent.request("session/new", { cwd: home, mcpServers: [] })).rejects.toMatchObject({
        code: -32603,
        message: expect.stringContaining(`No Spool server answers at ws://127.0.0.1:${port}/`),
      });
      expect(() => readFileSync(join(home, "serve.log"))).toThrow();
    } finally {
      await acp.stop("SIGKILL");
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe("spool acp across a server restart", () => {
  it("a permission asked before the Spool server restarted is answered after it, and the turn still ends", async () => {
    const model = await ScriptedModel.start();
    const home = tempDir("spool-acp-restart-");
    const project = mkdtempSync(join(tmpdir(), "spool-acp-restart-project-"));
    const port = await freePort();
    const options = { home, port, env: modelEnv(model), agent: { toolYieldMs: 60_000 } };
    let ts = await startTestServer(options);
    const acp = spawnAcp({ args: ["--server", `ws://127.0.0.1:${port}/`], env: { SPOOL_HOME: home } });
    try {
      await initialize(acp, { name: "zed" });
      const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
      model.reply({ tools: [{ id: "call_survive", name: "sh", arguments: { command: "echo survived" } }] }, { text: "It survived." });
      const prompt = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "survive" }] });
      const ask = await acp.permission();
      await ts.stop();
      ts = await startTestServer(options);
      // Answered at once, perhaps before the bridge has reconnected: the answer waits for the connection; the run waits in the store.
      ask.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
      expect(await prompt).toEqual({ stopReason: "end_turn" });
      expect(toolResult(model.requests.at(-1)!, "call_survive")).toContain("survived");
      expect(acp.events.filter((e) => e.kind === "permission")).toHaveLength(1);
    } finally {
      await acp.stop("SIGKILL");
      await ts.stop();
      await model.close();
      rmSync(project, { recursive: true, force: true });
    }
  });
});
