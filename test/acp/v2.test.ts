import { mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { SessionUpdate as V1Update } from "@agentclientprotocol/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";
import { type AcpEditor, initialize } from "./harness.js";
import { aborted, editorByUrl, type UrlTransport } from "./url-harness.js";
import { isKind, type V2Editor, type V2Update, v2EditorByUrl } from "./v2-harness.js";

/*
 * ACP v2 (the draft in the SDK's experimental/v2) on /acp of a real `spool serve` with its demo model, driven by the
 * SDK's own v2 client over its HTTP and WebSocket clients: negotiated at initialize, commands as agent-owned
 * terminals streamed live, permission requests about a command, state_update; a v1 client beside it sees v1 only.
 */

/** A command printing a line every 100 ms. */
const TICKS = "for i in 1 2 3 4 5 6 7 8; do echo tick$i; sleep 0.1; done";
const TICKS_OUT = "tick1\ntick2\ntick3\ntick4\ntick5\ntick6\ntick7\ntick8\n";
const V1_KINDS = new Set(["agent_message_chunk", "user_message_chunk", "agent_thought_chunk", "tool_call", "tool_call_update", "session_info_update"]);
const decode = (data: string) => Buffer.from(data, "base64").toString("utf8");

describe("ACP v2 at /acp", () => {
  let home: string;
  let project: string;
  let port: number;
  let server: ServeProcess;
  let token: string;
  const closers: (() => void)[] = [];

  const v2 = (transport: UrlTransport) => {
    const e = v2EditorByUrl(port, transport, token);
    closers.push(() => void e.connection.close());
    return e;
  };
  const v1 = (transport: UrlTransport): AcpEditor => {
    const e = editorByUrl(port, transport, token);
    closers.push(() => void e.connection.close?.());
    return e;
  };
  const init2 = (e: V2Editor, name: string) =>
    e.connection.agent.request("initialize", { protocolVersion: 2, info: { name, version: "1.0.0" }, capabilities: {} });

  beforeAll(async () => {
    home = tempDir("spool-acp-v2-home-");
    project = join(tempDir("spool-acp-v2-"), "proj");
    mkdirSync(join(project, ".git"), { recursive: true });
    project = realpathSync(project);
    port = await freePort();
    server = await spawnServe(["--port", String(port), "--home", home, "--demo-model"]);
    token = readFileSync(join(home, "token"), "utf8").trim();
  }, 60_000);
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });
  afterAll(async () => {
    await server?.stop();
  });

  for (const transport of ["http", "ws"] as const) {
    it(`over ${transport === "http" ? "Streamable HTTP" : "WebSocket"}: v2 negotiated, the command a live terminal with its exit status, the permission about the command; a v1 client on the session sees v1 only`, async () => {
      const e = v2(transport);
      const init = await init2(e, `v2-${transport}`);
      expect(init.protocolVersion).toBe(2);
      expect(init.info.name).toBe("spool");
      expect(init.capabilities?.session).toBeTruthy();
      const { sessionId, configOptions } = await e.connection.agent.request("session/new", { cwd: project });
      expect(configOptions?.map((o) => o.configId)).toEqual(["mode", "model"]);

      // A v1 client follows the same session on the same server.
      const old = v1(transport === "http" ? "ws" : "http");
      const oldInit = await initialize(old, { name: "old-editor", terminal: true });
      expect(oldInit.protocolVersion).toBe(1);
      await old.connection.agent.request("session/resume", { sessionId, cwd: project });

      const { messageId } = await e.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: `run \`${TICKS}\`` }] });
      expect(messageId).toBeTruthy();
      const ask = await e.permission();
      const subject = ask.params.subject as { type: string; command: string; cwd: string; toolCallId: string; terminalId?: string };
      expect(subject).toMatchObject({ type: "command", command: TICKS, cwd: project });
      expect(isAbsolute(subject.cwd)).toBe(true);
      expect(subject.terminalId).toBeTruthy();
      // The facts every client shows, in the description.
      expect(ask.params.description).toContain(TICKS);
      expect(ask.params.description).toMatch(/sandbox/i);
      expect(ask.params.options.map((o) => o.kind)).toEqual(["allow_once", "allow_always", "reject_once"]);
      // While the proposal waits the session requires action; the terminal was announced with its command and cwd.
      const waiting = e.updates(sessionId).find((u) => isKind("state_update")(u.update) && u.update.state === "requires_action");
      expect(waiting).toBeTruthy();
      const announced = e.updates(sessionId).find((u) => isKind("terminal_update")(u.update) && u.update.terminalId === subject.terminalId);
      expect(announced?.update).toMatchObject({ command: TICKS, cwd: project });
      const oldAsk = await old.permission();
      expect(oldAsk.params.toolCall.toolCallId).toBe(subject.toolCallId);

      ask.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
      await aborted(oldAsk.signal);
      const terminalId = subject.terminalId!;
      const exit = await e.update((u) => isKind("terminal_update")(u) && u.terminalId === terminalId && !!u.exitStatus);
      expect((exit.update as V2Update<"terminal_update">).exitStatus).toMatchObject({ exitCode: 0 });
      const idle = await e.update((u) => isKind("state_update")(u) && u.state === "idle");
      expect(idle.update).toMatchObject({ stopReason: "end_turn" });

      const all = e.updates(sessionId);
      const chunks = all.filter((u) => isKind("terminal_output_chunk")(u.update) && u.update.terminalId === terminalId);
      const snapshots = all.filter((u) => isKind("terminal_update")(u.update) && u.update.terminalId === terminalId && u.update.output);
      const text = [...snapshots, ...chunks]
        .map((u) => decode((u.update as { data?: string; output?: { data: string } }).output?.data ?? (u.update as { data: string }).data))
        .join("");
      expect(text).toBe(TICKS_OUT);
      // Live: the first line arrived well before the command ended (it prints for ~800 ms), in more than one chunk (a
      // busy machine reads several lines into one: two CI runs side by side gave two).
      const first = chunks.find((u) => decode((u.update as V2Update<"terminal_output_chunk">).data).includes("tick1"))!;
      expect(first).toBeTruthy();
      expect(chunks.length).toBeGreaterThanOrEqual(2);
      expect(exit.at - first.at).toBeGreaterThanOrEqual(400);
      const index = (x: { update: unknown }) => all.findIndex((u) => u.update === x.update);
      expect(index(first)).toBeLessThan(index(exit));
      // The prompt echoed with its id; after the decision the session ran again, then went idle after the exit.
      expect(all.some((u) => isKind("user_message_chunk")(u.update) && u.update.messageId === messageId)).toBe(true);
      const states = all.filter((u) => isKind("state_update")(u.update)).map((u) => (u.update as V2Update<"state_update">).state);
      expect(states.slice(states.indexOf("requires_action"))).toEqual(["requires_action", "running", "idle"]);
      expect(index(idle)).toBeGreaterThan(index(exit));

      // The v1 client saw the same command in v1's terms only: its tool call's terminal output, no v2 update.
      await old.update((u) => u.sessionUpdate === "tool_call_update" && u.toolCallId === subject.toolCallId && u.status === "completed");
      const oldUpdates: V1Update[] = old.updates(sessionId);
      expect(oldUpdates.filter((u) => !V1_KINDS.has(u.sessionUpdate))).toEqual([]);
      expect(oldUpdates.map((u) => (u as { _meta?: { terminal_output?: { data?: string } } })._meta?.terminal_output?.data ?? "").join("")).toBe(TICKS_OUT);
      expect("subject" in oldAsk.params).toBe(false);
    }, 60_000);
  }

  it("resume sends the session's state before it answers, replays from the start when asked, and refuses a replay cursor it does not know", async () => {
    const a = v2("http");
    await init2(a, "first");
    const { sessionId } = await a.connection.agent.request("session/new", { cwd: project });
    const { messageId } = await a.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "run `echo resumed-later`" }] });
    const ask = await a.permission();
    const b = v2("ws");
    await init2(b, "second");
    // A cursor type this agent does not know is refused, not replaced by another (the draft's rule).
    await expect(
      b.connection.agent.request("session/resume", { sessionId, cwd: project, replayFrom: { type: "_from_message", messageId: "x" } as never }),
    ).rejects.toMatchObject({ code: -32602 });
    await b.connection.agent.request("session/resume", { sessionId, cwd: project, replayFrom: { type: "start" } });
    // Before the answer: the replayed prompt, then the state (a proposal waits), and the request to the new client.
    const seen = (await b.before("session/resume", sessionId)).map((u) => u.update);
    // The replayed prompt keeps the id its answer gave.
    expect(seen.find((u) => isKind("user_message_chunk")(u) && JSON.stringify(u.content).includes("resumed-later"))).toMatchObject({ messageId });
    expect(seen.filter(isKind("state_update")).at(-1)).toMatchObject({ state: "requires_action" });
    const askB = await b.permission();
    expect(askB.params.subject).toMatchObject({ type: "command", command: "echo resumed-later", cwd: project });
    askB.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    await aborted(ask.signal);
    for (const e of [a, b]) await e.update((u) => isKind("state_update")(u) && u.state === "idle");
  }, 60_000);

  it("a client resuming while a command prints gets its terminal as a snapshot of the last lines, then only what follows", async () => {
    const a = v2("ws");
    await init2(a, "first");
    const { sessionId } = await a.connection.agent.request("session/new", { cwd: project });
    // After its first 100 lines and late1 it waits until the second client has resumed (the file `go` appears), so it
    // still runs when that client comes, however busy the machine; then it prints the rest.
    const go = join(project, "go");
    const command = `seq 1 100; echo late1; until [ -e ${go} ]; do sleep 0.05; done; for i in $(seq 2 30); do echo late$i; done`;
    await a.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: `run \`${command}\`` }] });
    const ask = await a.permission();
    const terminalId = (ask.params.subject as { terminalId: string }).terminalId;
    ask.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    await a.update((u) => isKind("terminal_output_chunk")(u) && u.terminalId === terminalId && decode(u.data).includes("late1"));

    const b = v2("http");
    await init2(b, "second");
    await b.connection.agent.request("session/resume", { sessionId, cwd: project });
    const announced = await b.update((u) => isKind("terminal_update")(u) && u.terminalId === terminalId && !!u.command);
    expect(announced.update).toMatchObject({ command, cwd: project });
    const snapshot = await b.update((u) => isKind("terminal_update")(u) && u.terminalId === terminalId && !!u.output);
    const shown = decode((snapshot.update as V2Update<"terminal_update">).output!.data);
    // Bounded like the model's view: the last 40 lines, and a note that Spool's entry keeps the rest.
    expect(shown).toMatch(/^\[… earlier output not shown here; Spool's entry \S+ keeps all of it\]\r\n/);
    const lines = shown.split("\r\n")[1]!.split("\n").filter(Boolean);
    expect(lines.length).toBe(40);
    expect(lines).toContain("100");
    expect(lines).toContain("late1");
    writeFileSync(go, "");
    await b.update((u) => isKind("terminal_update")(u) && u.terminalId === terminalId && !!u.exitStatus);
    // Then only what came after: every late line exactly once in the snapshot and the chunks together.
    const chunks = b
      .updates(sessionId)
      .filter((u) => isKind("terminal_output_chunk")(u.update) && u.update.terminalId === terminalId)
      .map((u) => decode((u.update as V2Update<"terminal_output_chunk">).data));
    const whole = (shown + chunks.join("")).split(/\r?\n/);
    for (let i = 1; i <= 30; i++) expect(whole.filter((l) => l === `late${i}`)).toHaveLength(1);
    expect(chunks.join("")).toContain("late30");
  }, 60_000);

  it("what v2 leaves open: fields Spool does not know are ignored, and an outcome it does not know rejects the command", async () => {
    const a = v2("http");
    const init = await a.connection.agent.request("initialize", {
      protocolVersion: 2,
      info: { name: "future", version: "9" },
      capabilities: { _future: { x: 1 } } as never,
      later: true,
    } as never);
    expect(init.protocolVersion).toBe(2);
    const { sessionId } = await a.connection.agent.request("session/new", { cwd: project, additionalRoots: [], _meta: { someone: "else" } } as never);
    await a.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "run `echo never-runs`" }] });
    const ask = await a.permission();
    const { toolCallId } = ask.params.subject as { toolCallId: string };
    ask.answer({ outcome: { outcome: "_deferred", until: "later" } } as never);
    const ended = await a.update((u) => isKind("tool_call_update")(u) && u.toolCallId === toolCallId && u.status === "failed");
    expect(JSON.stringify(ended.update)).toContain("rejected by");
    await a.update((u) => isKind("state_update")(u) && u.state === "idle");
  }, 60_000);

  it("terminal/cancel stops one running command, session/cancel and session/close the turn: each terminal ends with its exit status, the turn idle cancelled", async () => {
    const a = v2("ws");
    await init2(a, "canceller");
    const { sessionId } = await a.connection.agent.request("session/new", { cwd: project });
    const run = async (text: string) => {
      await a.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: `run \`echo ${text}; sleep 30\`` }] });
      const ask = await a.permission();
      const { terminalId, toolCallId } = ask.params.subject as { terminalId: string; toolCallId: string };
      ask.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
      await a.update((u) => isKind("terminal_output_chunk")(u) && u.terminalId === terminalId && decode(u.data).includes(text));
      return { terminalId, toolCallId };
    };
    const first = await run("first");
    // A running terminal says it can be cancelled.
    const running = a.updates(sessionId).find((u) => isKind("terminal_update")(u.update) && u.update.terminalId === first.terminalId && !!u.update.output);
    expect(running?.update).toMatchObject({ capabilities: { cancel: {} } });
    expect(await a.connection.agent.request("terminal/cancel", { sessionId, terminalId: first.terminalId })).toEqual({});
    const ended = await a.update((u) => isKind("terminal_update")(u) && u.terminalId === first.terminalId && !!u.exitStatus);
    expect(ended.update).toMatchObject({ capabilities: null });
    await a.update((u) => isKind("tool_call_update")(u) && u.toolCallId === first.toolCallId && u.status === "cancelled");
    // The model is told and the turn ends by itself; a terminal that ended cannot be cancelled again.
    await a.update((u) => isKind("state_update")(u) && u.state === "idle");
    await expect(a.connection.agent.request("terminal/cancel", { sessionId, terminalId: first.terminalId })).rejects.toMatchObject({ code: -32602 });

    const second = await run("second");
    await a.connection.agent.notify("session/cancel", { sessionId });
    await a.update((u) => isKind("terminal_update")(u) && u.terminalId === second.terminalId && !!u.exitStatus);
    await a.update((u) => isKind("state_update")(u) && u.state === "idle" && u.stopReason === "cancelled");

    // session/close, from a client following the session that did not prompt it, cancels the work too, and says so before it answers.
    // (Over WebSocket: one ordered stream. Over HTTP the answer and the updates come on different streams.)
    const b = v2("ws");
    await init2(b, "closer");
    await b.connection.agent.request("session/resume", { sessionId, cwd: project });
    const third = await run("third");
    await b.update((u) => isKind("terminal_output_chunk")(u) && u.terminalId === third.terminalId);
    const states = () => b.updates(sessionId).flatMap((u) => (isKind("state_update")(u.update) ? [u.update] : []));
    expect(states().at(-1)).toMatchObject({ state: "running" });
    await b.connection.agent.request("session/close", { sessionId });
    const told = (await b.before("session/close", sessionId)).flatMap((u) => (isKind("state_update")(u.update) ? [u.update] : []));
    expect(told.at(-1)).toMatchObject({ state: "idle", stopReason: "cancelled" });
    await a.update((u) => isKind("terminal_update")(u) && u.terminalId === third.terminalId && !!u.exitStatus);
  }, 60_000);
});
