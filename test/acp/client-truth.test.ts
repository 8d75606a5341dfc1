import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SessionUpdate } from "@agentclientprotocol/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY, RUN } from "../../src/protocol/status.js";
import { alive, freePort, spawnServe } from "../helpers/process.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";
import { type AcpProcess, agentText, initialize, spawnAcp } from "./harness.js";

/** What an ACP client is told matches what the server did (issue 26, items 12-18). */

const modelEnv = (model: ScriptedModel) => ({ SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" });

type ToolUpdate = Extract<SessionUpdate, { sessionUpdate: "tool_call_update" }>;
const isFinal = (u: ToolUpdate) => u.status === "completed" || u.status === "failed";
const isUpdateOf =
  (id: string) =>
  (u: SessionUpdate): u is ToolUpdate =>
    u.sessionUpdate === "tool_call_update" && u.toolCallId === id;
const meta = (u: SessionUpdate) => ((u as { _meta?: Record<string, { data?: string }> })._meta ?? {}) as Record<string, { data?: string }>;
const textOf = (u: ToolUpdate) => (u.content ?? []).map((c) => (c.type === "content" && c.content.type === "text" ? c.content.text : "")).join("");
/** The updates of a session among the editor's events `from` to `to` (indexes of `events`, which also hold permission requests). */
const updatesIn = (acp: AcpProcess, sessionId: string, from: number, to?: number): SessionUpdate[] =>
  acp.events.slice(from, to).flatMap((e) => (e.kind === "update" && e.sessionId === sessionId ? [e.update] : []));

/** The pid of the command a producer runs, once it has started. */
async function commandPid(client: SpoolClient, run: string): Promise<{ pid: number; path: string }> {
  let found = { pid: 0, path: "" };
  await eventually(
    async () => {
      const { entries } = await client.call("entry/list", { run, pattern: "log://*" });
      for (const log of entries) {
        const pid = (log.attributes.process as { pid?: number } | undefined)?.pid ?? 0;
        if (pid > 0) found = { pid, path: log.path };
      }
      return found.pid > 0;
    },
    20_000,
    "the command's pid",
  );
  return found;
}

describe("spool acp tells the editor what happened, once and in order", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  let project: string;
  const running: AcpProcess[] = [];
  const start = () => {
    const acp = spawnAcp({ args: ["--server", ts.server.url], env: { SPOOL_HOME: ts.home } });
    running.push(acp);
    return acp;
  };
  const spool = async (name: string): Promise<SpoolClient> => {
    const c = await ts.client();
    await c.initialize(undefined, { root: project, client: { name, version: "1.0" } });
    return c;
  };
  const pids: number[] = [];

  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: modelEnv(model), agent: { toolYieldMs: 60_000 } });
    project = mkdtempSync(join(tmpdir(), "spool-acp-truth-"));
  });
  afterEach(async () => {
    for (const acp of running.splice(0)) await acp.stop("SIGKILL");
    for (const pid of pids.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
    model.reset();
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
    rmSync(project, { recursive: true, force: true });
  });

  it("a reply in plain text after a tool call is sent once, not again as the loop's summary", async () => {
    const acp = start();
    await initialize(acp, { name: "zed" });
    const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    model.reply({ text: "Checking. ", tools: [{ id: "call_echo", name: "sh", arguments: { command: "echo 42" } }] }, { text: "The answer is 42." });
    const prompt = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "answer?" }] });
    (await acp.permission()).answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    expect(await prompt).toEqual({ stopReason: "end_turn" });
    expect(agentText(acp.updates(sessionId))).toBe("Checking. The answer is 42.");

    // A summary given with done that the model did not say as text is still shown, once.
    model.reply({ text: "Done.", tools: [{ id: "call_done", name: "done", arguments: { summary: "Nothing to do." } }] });
    const from = acp.events.length;
    expect(await acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "again" }] })).toEqual({ stopReason: "end_turn" });
    expect(agentText(updatesIn(acp, sessionId, from))).toBe("Done.\n\nNothing to do.");
  });

  it("session/cancel: the cancelled command's last tool_call_update comes before the prompt's answer, none after", async () => {
    const acp = start();
    await initialize(acp, { name: "zed", terminal: true });
    const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    const watcher = await spool("watcher");
    model.reply({ tools: [{ id: "call_cancel", name: "sh", arguments: { command: "echo started; sleep 300" } }] });
    const prompt = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "long" }] });
    (await acp.permission()).answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    await acp.update((u) => isUpdateOf("call_cancel")(u) && meta(u).terminal_output?.data === "started\n");
    pids.push((await commandPid(watcher, sessionId.split("/")[1]!)).pid);
    await acp.connection.agent.notify("session/cancel", { sessionId });
    const answeredAt = await prompt.then((r) => {
      expect(r).toEqual({ stopReason: "cancelled" });
      return acp.events.length;
    });
    const before = updatesIn(acp, sessionId, 0, answeredAt).filter(isUpdateOf("call_cancel"));
    expect(before.at(-1)).toMatchObject({ status: "failed" });
    // The next prompt receives nothing of the cancelled one.
    model.reply({ text: "fresh" });
    const from = acp.events.length;
    expect(await acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "next" }] })).toEqual({ stopReason: "end_turn" });
    expect(updatesIn(acp, sessionId, from).filter(isUpdateOf("call_cancel"))).toEqual([]);
    expect(agentText(updatesIn(acp, sessionId, from))).toBe("fresh");
  });

  it("session/cancel while the model waits on a background command: both tool calls end before the prompt's answer", async () => {
    const acp = start();
    await initialize(acp, { name: "zed" });
    const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    const watcher = await spool("watcher");
    model.reply(
      { tools: [{ id: "call_bg", name: "sh", arguments: { command: "sleep 300", background: true } }] },
      { tools: [{ id: "call_wait", name: "wait", arguments: { path: "log://turn_1/sh/sleep-300", timeout_ms: 600_000 } }] },
    );
    const prompt = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "wait" }] });
    (await acp.permission()).answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    await acp.update((u) => u.sessionUpdate === "tool_call" && u.toolCallId === "call_wait");
    pids.push((await commandPid(watcher, sessionId.split("/")[1]!)).pid);
    await model.received(2);
    await acp.connection.agent.notify("session/cancel", { sessionId });
    const answeredAt = await prompt.then((r) => {
      expect(r).toEqual({ stopReason: "cancelled" });
      return acp.events.length;
    });
    const before = updatesIn(acp, sessionId, 0, answeredAt);
    expect(before.filter(isUpdateOf("call_bg")).at(-1)).toMatchObject({ status: "failed" });
    const wait = before.filter(isUpdateOf("call_wait")).at(-1)!;
    expect(wait.status).toBe("failed");
    expect(textOf(wait)).toBe("cancelled");
  });

  it("session/close cancels the session's work: the command is killed, the prompt answers cancelled, the run ends 499", async () => {
    const acp = start();
    await initialize(acp, { name: "zed", terminal: true });
    const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    const run = sessionId.split("/")[1]!;
    const watcher = await spool("watcher");
    model.reply({ tools: [{ id: "call_close", name: "sh", arguments: { command: "echo started; sleep 300" } }] });
    const prompt = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "long" }] });
    (await acp.permission()).answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    await acp.update((u) => isUpdateOf("call_close")(u) && meta(u).terminal_output?.data === "started\n");
    const { pid, path } = await commandPid(watcher, run);
    pids.push(pid);
    await acp.connection.agent.request("session/close", { sessionId });
    expect(await prompt).toEqual({ stopReason: "cancelled" });
    expect((await watcher.call("run/get", { run })).run.status).toBe(RUN.aborted);
    expect((await watcher.call("entry/get", { run, path })).attributes.status).toBe(ENTRY.cancelled);
    await eventually(() => !alive(pid), 10_000, "the command's process to be gone");
  });

  it("session/close withdraws a waiting permission request and rejects its proposal", async () => {
    const acp = start();
    await initialize(acp, { name: "zed" });
    const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    const run = sessionId.split("/")[1]!;
    const watcher = await spool("watcher");
    model.reply({ tools: [{ id: "call_wait", name: "sh", arguments: { command: "echo never" } }] });
    const prompt = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "ask" }] });
    const ask = await acp.permission();
    await acp.connection.agent.request("session/close", { sessionId });
    expect(ask.signal.aborted).toBe(true);
    expect(await prompt).toEqual({ stopReason: "cancelled" });
    const { proposals } = await watcher.call("proposal/list", { run });
    expect(proposals).toEqual([]);
    const { entries } = await watcher.call("entry/list", { run, pattern: "log://*" });
    expect(entries.map((e) => e.status)).toEqual([ENTRY.rejected]);
    expect((await watcher.call("run/get", { run })).run.status).toBe(RUN.aborted);
  });

  it("a permission request the editor answers cancelled on its own rejects that proposal, and the turn goes on", async () => {
    const acp = start();
    await initialize(acp, { name: "acpx" });
    const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    const run = sessionId.split("/")[1]!;
    const watcher = await spool("watcher");
    model.reply({ tools: [{ id: "call_refused", name: "sh", arguments: { command: "echo refused" } }] }, { text: "I was not allowed." });
    const prompt = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "try" }] });
    (await acp.permission()).answer({ outcome: { outcome: "cancelled" } });
    expect(await prompt).toEqual({ stopReason: "end_turn" });
    const failed = acp.updates(sessionId).filter(isUpdateOf("call_refused")).at(-1)!;
    expect(failed.status).toBe("failed");
    expect(textOf(failed)).toBe("rejected by admin via acpx (spool acp): acpx cancelled the permission request");
    const { entries } = await watcher.call("entry/list", { run, pattern: "log://*" });
    expect(entries.map((e) => [e.status, e.attributes.reason])).toEqual([[403, "acpx cancelled the permission request"]]);
    expect(toolResult(model.requests[1]!, "call_refused")).toContain("acpx cancelled the permission request");
  });
});

describe("spool acp and SIGINT from the terminal its editor runs in", () => {
  it("with stdin a pipe, SIGINT does not end it: a session/cancel sent 1 ms later still cancels the command; a second SIGINT changes nothing; stdin EOF ends it", async () => {
    const model = await ScriptedModel.start();
    const ts = await startTestServer({ env: modelEnv(model), agent: { toolYieldMs: 60_000 } });
    const project = mkdtempSync(join(tmpdir(), "spool-acp-sigint-"));
    const acp = spawnAcp({ args: ["--server", ts.server.url], env: { SPOOL_HOME: ts.home } });
    let pid = 0;
    try {
      await initialize(acp, { name: "acpx", terminal: true });
      const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
      const run = sessionId.split("/")[1]!;
      const watcher = await ts.client();
      await watcher.initialize(undefined, { root: project });
      model.reply({ tools: [{ id: "call_int", name: "sh", arguments: { command: "echo started; sleep 300" } }] });
      const prompt = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "long" }] });
      (await acp.permission()).answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
      await acp.update((u) => isUpdateOf("call_int")(u) && meta(u).terminal_output?.data === "started\n");
      const command = await commandPid(watcher, run);
      pid = command.pid;

      // Ctrl-C in the terminal: the agent gets SIGINT, then the editor's session/cancel a millisecond later.
      acp.child.kill("SIGINT");
      await new Promise((resolve) => setTimeout(resolve, 1));
      await acp.connection.agent.notify("session/cancel", { sessionId });
      expect(await prompt).toEqual({ stopReason: "cancelled" });
      expect((await watcher.call("entry/get", { run, path: command.path })).attributes.status).toBe(ENTRY.cancelled);
      await eventually(() => !alive(pid), 10_000, "the command's process to be gone");

      acp.child.kill("SIGINT");
      expect((await acp.connection.agent.request("session/list", { cwd: project })).sessions.map((s) => s.sessionId)).toEqual([sessionId]);
      expect(acp.child.exitCode).toBeNull();
      acp.child.stdin!.end();
      expect(await acp.exit).toBe(0);
    } finally {
      if (pid && alive(pid)) process.kill(pid, "SIGKILL");
      await acp.stop("SIGKILL");
      await ts.stop();
      await model.close();
      rmSync(project, { recursive: true, force: true });
    }
  });
});

describe("session/list", () => {
  it("without cwd lists every run the token can see, across projects, in pages with an honest nextCursor; cwd filters", async () => {
    const model = await ScriptedModel.start();
    const ts = await startTestServer({ env: modelEnv(model) });
    const roots = [mkdtempSync(join(tmpdir(), "spool-acp-list-a-")), mkdtempSync(join(tmpdir(), "spool-acp-list-b-"))];
    const acp = spawnAcp({ args: ["--server", ts.server.url], env: { SPOOL_HOME: ts.home } });
    try {
      const made: string[] = [];
      for (const [i, root] of roots.entries()) {
        const c = await ts.client();
        const { project } = await c.initialize(undefined, { root, client: { name: "maker", version: "1" } });
        for (let n = 0; n < (i === 0 ? 70 : 60); n++) made.push(`${project.name}/${(await c.call("run/create", {})).run.alias}`);
      }
      await initialize(acp);
      const agent = acp.connection.agent;
      const first = await agent.request("session/list", {});
      expect(first.sessions).toHaveLength(100);
      expect(first.nextCursor).toEqual(expect.any(String));
      const second = await agent.request("session/list", { cursor: first.nextCursor! });
      expect(second.sessions).toHaveLength(30);
      expect(second.nextCursor ?? null).toBeNull();
      const listed = [...first.sessions, ...second.sessions];
      expect(new Set(listed.map((s) => s.sessionId)).size).toBe(130);
      expect(listed.map((s) => s.sessionId).sort()).toEqual([...made].sort());
      expect(new Set(listed.map((s) => s.cwd))).toEqual(new Set(roots));

      const onlyB = await agent.request("session/list", { cwd: roots[1]! });
      expect(onlyB.sessions).toHaveLength(60);
      expect(onlyB.sessions.every((s) => s.cwd === roots[1])).toBe(true);
      expect(onlyB.nextCursor ?? null).toBeNull();
      // A directory that is no project lists nothing; a cursor that is not one of ours is refused.
      expect((await agent.request("session/list", { cwd: tempDir("spool-acp-list-none-") })).sessions).toEqual([]);
      await expect(agent.request("session/list", { cursor: "garbage" })).rejects.toMatchObject({ code: -32602 });
      await expect(agent.request("session/list", { cwd: "relative" })).rejects.toMatchObject({ code: -32602 });
    } finally {
      await acp.stop("SIGKILL");
      await ts.stop();
      await model.close();
      for (const root of roots) rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("spool acp when its Spool server restarts mid-command", () => {
  it.each([
    { how: "stopped (SIGTERM), the editor shown snapshots", signal: "SIGTERM" as const, terminal: false },
    { how: "killed (SIGKILL), the editor shown a terminal", signal: "SIGKILL" as const, terminal: true },
  ])("server $how and started again: the running command's tool call ends failed with the reason, and the turn ends", async ({ signal, terminal }) => {
    const model = await ScriptedModel.start();
    const home = tempDir("spool-acp-lost-");
    const project = mkdtempSync(join(tmpdir(), "spool-acp-lost-project-"));
    const port = await freePort();
    // A short grace: a producer whose runner died with the server is lost soon after the restart.
    const env = { SPOOL_HOME: home, SPOOL_RUNNER_GRACE_MS: "500", SPOOL_TOOL_YIELD_MS: "60000", ...modelEnv(model) };
    let serve = await spawnServe(["--port", String(port)], env);
    const acp = spawnAcp({ args: ["--server", serve.url], env: { SPOOL_HOME: home } });
    let pid = 0;
    try {
      await initialize(acp, { name: "acpx", terminal });
      const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
      model.reply({ tools: [{ id: "call_lost", name: "sh", arguments: { command: "echo started; sleep 300" } }] }, { text: "It was lost." });
      const prompt = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "long" }] });
      (await acp.permission()).answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
      const token = readFileSync(join(home, "token"), "utf8").trim();
      const watcher = await SpoolClient.connect(serve.url, { token });
      await watcher.initialize(undefined, { root: project });
      const command = await commandPid(watcher, sessionId.split("/")[1]!);
      pid = command.pid;
      await eventually(async () => (await watcher.call("entry/list", { run: sessionId.split("/")[1]!, pattern: "sh://*" })).entries.some((e) => e.bytes > 0));
      watcher.close();
      await acp.update((u) => isUpdateOf("call_lost")(u) && u.status === "in_progress");

      await serve.stop(signal);
      serve = await spawnServe(["--port", String(port)], env);
      const last = (await acp.update((u) => isUpdateOf("call_lost")(u) && isFinal(u), 0, 30_000)) as ToolUpdate;
      expect(last.status).toBe("failed");
      const raw = last.rawOutput as { status: string; reason: string | null; log: string };
      expect(raw).toMatchObject({ status: "cancelled", log: command.path });
      expect(raw.reason).toEqual(expect.stringMatching(/./));
      if (terminal) expect(last._meta).toMatchObject({ terminal_exit: { terminal_id: "call_lost" } });
      else expect(textOf(last)).toContain(`started\n\`\`\`\ncancelled: ${raw.reason}`);
      expect(await prompt).toEqual({ stopReason: "end_turn" });
    } finally {
      if (pid && alive(pid)) process.kill(pid, "SIGKILL");
      await acp.stop("SIGKILL");
      await serve.stop("SIGTERM");
      await model.close();
      rmSync(home, { recursive: true, force: true });
      rmSync(project, { recursive: true, force: true });
    }
  });
});
