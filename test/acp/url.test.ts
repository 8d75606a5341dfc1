import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { SessionUpdate } from "@agentclientprotocol/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MAX_OPEN_SESSIONS } from "../../src/acp/open-sessions.js";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { freePort, type ServeProcess, spawnCli, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";
import { type AcpEditor, initialize, spawnAcp } from "./harness.js";
import { aborted, editorByUrl, type UrlTransport } from "./url-harness.js";

/*
 * ACP by URL: /acp on a real `spool serve` (with its demo model), driven by the ACP SDK's own Streamable HTTP and
 * WebSocket clients; decisions from another ACP client and from `spool approve`.
 */

type ToolUpdate = Extract<SessionUpdate, { sessionUpdate: "tool_call_update" }>;
const isToolUpdate = (u: SessionUpdate): u is ToolUpdate => u.sessionUpdate === "tool_call_update";
const terminalData = (u: SessionUpdate) => (u as { _meta?: { terminal_output?: { data?: string } } })._meta?.terminal_output?.data ?? "";
/** A command printing a line every 100 ms. */
const TICKS = "for i in 1 2 3 4 5 6 7 8; do echo tick$i; sleep 0.1; done";

describe("ACP by URL at /acp", () => {
  let home: string;
  let project: string;
  let port: number;
  let server: ServeProcess;
  let token: string;
  const editors: AcpEditor[] = [];
  const spools: SpoolClient[] = [];

  const editor = (transport: UrlTransport, credential = token, headers: Record<string, string> = {}) => {
    const e = editorByUrl(port, transport, credential, headers);
    editors.push(e);
    return e;
  };
  const admin = async () => {
    const c = await SpoolClient.connect(server.url, { token });
    spools.push(c);
    return c;
  };
  const prompt = (e: AcpEditor, sessionId: string, text: string) =>
    e.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text }] });

  beforeAll(async () => {
    home = tempDir("spool-acp-url-home-");
    project = join(tempDir("spool-acp-url-"), "proj");
    mkdirSync(join(project, ".git"), { recursive: true });
    port = await freePort();
    server = await spawnServe(["--port", String(port), "--home", home, "--demo-model"]);
    token = readFileSync(join(home, "token"), "utf8").trim();
  }, 60_000);
  afterEach(() => {
    for (const e of editors.splice(0)) void e.connection.close?.();
    for (const c of spools.splice(0)) c.close();
  });
  afterAll(async () => {
    await server?.stop();
  });

  for (const transport of ["http", "ws"] as const) {
    it(`over ${transport === "http" ? "Streamable HTTP" : "WebSocket"}: a prompt to the demo model, its permission answered, the output live, the turn ended`, async () => {
      const e = editor(transport);
      const init = await initialize(e, { name: `phone-${transport}`, terminal: true });
      expect(init.protocolVersion).toBe(1);
      expect(init.agentCapabilities).toMatchObject({ loadSession: true, sessionCapabilities: { list: {}, resume: {}, close: {} } });
      const { sessionId } = await e.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
      expect(sessionId).toMatch(/^proj\/run-\d+$/);
      const turn = prompt(e, sessionId, `run \`${TICKS}\``);
      const ask = await e.permission();
      expect(ask.params.toolCall.title).toBe(TICKS);
      ask.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
      const id = ask.params.toolCall.toolCallId;
      // Output arrives while the command runs: the first chunk before the tool call's end.
      const first = await e.update((u) => isToolUpdate(u) && u.toolCallId === id && terminalData(u).includes("tick1"));
      const firstAt = e.updates().indexOf(first);
      expect(await turn).toEqual({ stopReason: "end_turn" });
      const updates = e.updates(sessionId).filter((u): u is ToolUpdate => isToolUpdate(u) && u.toolCallId === id);
      const end = updates.findIndex((u) => u.status === "completed");
      expect(end).toBeGreaterThan(updates.indexOf(first as ToolUpdate));
      expect(firstAt).toBeGreaterThan(-1);
      expect(updates.map(terminalData).join("")).toBe("tick1\ntick2\ntick3\ntick4\ntick5\ntick6\ntick7\ntick8\n");
      const said = e
        .updates(sessionId)
        .map((u) => (u.sessionUpdate === "agent_message_chunk" && u.content.type === "text" ? u.content.text : ""))
        .join("");
      expect(said).toContain("[demo model]");
    }, 60_000);
  }

  it("two clients on one session: the second sees the updates and the first one's decision; cancel from the second stops the command", async () => {
    const a = editor("http");
    const b = editor("ws");
    await initialize(a, { name: "laptop", terminal: true });
    await initialize(b, { name: "phone", terminal: true });
    const { sessionId } = await a.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    await b.connection.agent.request("session/resume", { sessionId, cwd: project });
    const turn = prompt(a, sessionId, "run `echo decided; sleep 30`");
    const [askA, askB] = await Promise.all([a.permission(), b.permission()]);
    askA.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    // The first answer wins: the other client's question is withdrawn, and it sees the command run.
    await aborted(askB.signal);
    const id = askB.params.toolCall.toolCallId;
    await b.update((u) => isToolUpdate(u) && u.toolCallId === id && terminalData(u).includes("decided"));
    await a.update((u) => isToolUpdate(u) && u.toolCallId === id && terminalData(u).includes("decided"));
    // The second client cancels: the run's loop stops and so does its command.
    await b.connection.agent.notify("session/cancel", { sessionId });
    expect(await turn).toEqual({ stopReason: "cancelled" });
    const ended = await b.update((u) => isToolUpdate(u) && u.toolCallId === id && (u.status === "failed" || u.status === "completed"));
    expect((ended as ToolUpdate).status).toBe("failed");
    const spool = await admin();
    await spool.initialize(undefined, { root: project });
    const run = sessionId.split("/")[1]!;
    const { entries } = await spool.call("entry/list", { run });
    expect(entries.map((x) => x.status)).toContain(ENTRY.cancelled);
  }, 60_000);

  it("a decision made with spool approve withdraws the request on both clients, and both see the command's output", async () => {
    const a = editor("http");
    const b = editor("ws");
    await initialize(a, { name: "laptop", terminal: true });
    await initialize(b, { name: "phone", terminal: true });
    const { sessionId } = await a.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    await b.connection.agent.request("session/load", { sessionId, cwd: project, mcpServers: [] });
    const turn = prompt(a, sessionId, "run `echo approved-from-cli`");
    const [askA, askB] = await Promise.all([a.permission(), b.permission()]);
    const spool = await admin();
    await spool.initialize(undefined, { root: project });
    const run = sessionId.split("/")[1]!;
    const { proposals } = await spool.call("proposal/list", { run });
    const cli = spawnCli(
      ["approve", run, proposals[0]!.path],
      { SPOOL_SERVER: server.url, SPOOL_TOKEN_FILE: join(home, "token"), SPOOL_HOME: home },
      { cwd: project },
    );
    expect({ code: (await cli.exitsWithin(30_000)).code, err: cli.stderr() }).toEqual({ code: 0, err: "" });
    await Promise.all([aborted(askA.signal), aborted(askB.signal)]);
    const id = askA.params.toolCall.toolCallId;
    for (const e of [a, b]) await e.update((u) => isToolUpdate(u) && u.toolCallId === id && u.status === "completed");
    expect(await turn).toEqual({ stopReason: "end_turn" });
    for (const e of [a, b])
      expect(
        e
          .updates(sessionId)
          .filter((u) => isToolUpdate(u) && u.toolCallId === id)
          .map(terminalData)
          .join(""),
      ).toBe("approved-from-cli\n");
  }, 60_000);

  it("a session opened by URL is a Spool run: listed, closed, and loaded again by spool acp on stdio", async () => {
    const e = editor("ws");
    await initialize(e, { name: "phone" });
    const { sessionId } = await e.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
    const turn = prompt(e, sessionId, "run `echo hi`");
    (await e.permission()).answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    expect(await turn).toEqual({ stopReason: "end_turn" });
    const listed = await e.connection.agent.request("session/list", { cwd: project });
    expect(listed.sessions.map((x) => x.sessionId)).toContain(sessionId);
    expect(await e.connection.agent.request("session/close", { sessionId })).toEqual({});
    const stdio = spawnAcp({ args: ["--server", server.url], env: { SPOOL_HOME: home } });
    try {
      await initialize(stdio, { name: "zed" });
      await stdio.connection.agent.request("session/load", { sessionId, cwd: project, mcpServers: [] });
      expect(
        stdio.updates(sessionId).some((u) => u.sessionUpdate === "user_message_chunk" && u.content.type === "text" && u.content.text === "run `echo hi`"),
      ).toBe(true);
    } finally {
      await stdio.stop("SIGKILL");
    }
  }, 60_000);

  it(`one connection keeps ${MAX_OPEN_SESSIONS} sessions open: past it the least recently used idle one closes (session/load opens it again); with every one prompting, session/new is refused and makes no run`, async () => {
    const e = editor("ws");
    await initialize(e, { name: "many-tabs" });
    const open = async () => (await e.connection.agent.request("session/new", { cwd: project, mcpServers: [] })).sessionId;
    const ids: string[] = [];
    for (let i = 0; i < MAX_OPEN_SESSIONS; i++) ids.push(await open());
    // The first prompts (and waits for its permission); the second is used again, so the third is the least recently used idle one.
    const busy = prompt(e, ids[0]!, "run `echo still-here`");
    const ask = await e.permission();
    expect(ask.params.sessionId).toBe(ids[0]);
    await e.connection.agent.request("session/set_mode", { sessionId: ids[1]!, modeId: "ask" });
    const extra = await open();
    expect(extra).not.toBe(ids[2]);
    const closed = await prompt(e, ids[2]!, "hello").catch((error: unknown) => error);
    expect(closed).toMatchObject({ code: -32002 });
    // The busy session was kept: its prompt goes on to its end.
    ask.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    expect(await busy).toEqual({ stopReason: "end_turn" });
    // Loading the closed one opens it again (closing the next least recently used idle one, the fourth).
    await e.connection.agent.request("session/load", { sessionId: ids[2]!, cwd: project, mcpServers: [] });
    expect(await prompt(e, ids[3]!, "hello").catch((error: unknown) => error)).toMatchObject({ code: -32002 });

    // Every session prompting: one more is refused, and no run is made for it.
    const full = editor("ws");
    await initialize(full, { name: "all-busy" });
    const mine: string[] = [];
    for (let i = 0; i < MAX_OPEN_SESSIONS; i++) mine.push((await full.connection.agent.request("session/new", { cwd: project, mcpServers: [] })).sessionId);
    const turns = mine.map((sessionId) => prompt(full, sessionId, "run `echo waiting`").catch(() => undefined));
    for (let i = 0; i < mine.length; i++) await full.permission();
    const spool = await admin();
    await spool.initialize("proj", { root: project, client: { name: "count", version: "1" } });
    const runs = async () => (await spool.call("run/list", { limit: 1000 })).runs.length;
    const before = await runs();
    const refused = await full.connection.agent.request("session/new", { cwd: project, mcpServers: [] }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ message: expect.stringContaining(`each with a prompt running, the most it keeps (${MAX_OPEN_SESSIONS})`) });
    expect(await runs()).toBe(before);
    void turns;
  }, 90_000);
});
