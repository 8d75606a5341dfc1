import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SessionUpdate } from "@agentclientprotocol/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { initialize, spawnAcp } from "./harness.js";

/** 819,200 lines of 128 bytes: 100 MiB, each line its own number. */
const COMMAND = "seq -f '%0127g' 1 819200";
const BYTES = 100 * 1024 * 1024;

const modelEnv = (model: ScriptedModel) => ({ SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" });

type Meta = { terminal_output?: { terminal_id: string; data: string }; terminal_exit?: { exit_code: number | null } };
const meta = (u: SessionUpdate) => ((u as { _meta?: Meta })._meta ?? {}) as Meta;

/**
 * Issue 38, point 2: every reader that pages reads a 100 MiB channel byte-exact, ACP included. An editor that
 * shows terminals (`_meta.terminal_output`) gets a command's every byte, in order, from a real `spool acp`.
 */
describe("spool acp: a 100 MiB channel reaches the editor byte-exact", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  let project: string;

  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: modelEnv(model) });
    project = mkdtempSync(join(tmpdir(), "spool-acp-large-"));
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
    rmSync(project, { recursive: true, force: true });
  });

  /** `command` run in a session of an editor that shows terminals; every byte its terminal got, and the final update. */
  async function terminalBytes(server: TestServer, command: string, bytes: number): Promise<void> {
    const expected = createHash("sha256")
      .update(execFileSync("sh", ["-c", command], { maxBuffer: bytes * 2 }))
      .digest("hex");
    const acp = spawnAcp({ args: ["--server", server.server.url], env: { SPOOL_HOME: server.home } });
    try {
      await initialize(acp, { terminal: true });
      const { sessionId } = await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
      model.reply(
        { tools: [{ id: "call_big", name: "sh", arguments: { command } }] },
        { tools: [{ id: "call_done", name: "done", arguments: { summary: "ok" } }] },
      );
      const turn = acp.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "print a lot" }] });
      (await acp.permission(60_000)).answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
      const end = await acp.update(
        (u) => u.sessionUpdate === "tool_call_update" && u.toolCallId === "call_big" && meta(u).terminal_exit !== undefined,
        0,
        240_000,
      );
      expect(meta(end).terminal_exit?.exit_code).toBe(0);
      await turn;
      const hash = createHash("sha256");
      let received = 0;
      for (const u of acp.updates(sessionId)) {
        const output = u.sessionUpdate === "tool_call_update" && u.toolCallId === "call_big" ? meta(u).terminal_output : undefined;
        if (!output) continue;
        const chunk = Buffer.from(output.data, "utf8");
        received += chunk.length;
        hash.update(chunk);
      }
      expect(received).toBe(bytes);
      expect(hash.digest("hex")).toBe(expected);
    } finally {
      await acp.stop("SIGKILL");
    }
  }

  it("terminal_output carries all 104,857,600 bytes of stdout, in order, then terminal_exit 0", () => terminalBytes(ts, COMMAND, BYTES), 300_000);

  it("a watch the server drops as lagging (stream/lagged) goes on from the last chunk it got: still every byte", async () => {
    // A lag limit so small that the bridge's watch is dropped again and again while 16 MiB stream past.
    const small = await startTestServer({ env: modelEnv(model), limits: { maxWatcherBufferBytes: 64 * 1024 } });
    try {
      await terminalBytes(small, "seq -f '%0127g' 1 131072", 16 * 1024 * 1024);
    } finally {
      await small.stop();
    }
  }, 300_000);
});
