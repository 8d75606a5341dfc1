import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUN } from "../../src/protocol/status.js";
import { spoolInTerminal } from "../helpers/pty.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

/** `spool ask` and `spool act` in a real terminal (node-pty), the screen read through a terminal emulator. */
describe("spool ask / act on a terminal screen", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl }, agent: { toolYieldMs: 60_000 } });
    (await ts.clientIn("screen")).close();
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });
  const connection = () => ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "screen"];

  it("ask: the spinner never draws over nor erases the model's streamed answer (a line without a newline)", async () => {
    // The answer ends without a newline, then the model calls a tool: that used to start the spinner over the line and erase it.
    model.reply({ text: "The answer is forty-two, from lib/main.ts", delayMs: 30, tools: [{ name: "done", arguments: { summary: "answered" } }] });
    const term = spoolInTerminal(["ask", "what is the answer?", "--model", "test", "--run", "ask-screen", ...connection()], { cwd: ts.root });
    try {
      expect(await term.exited).toBe(0);
      const screen = await term.screen();
      expect(screen).toContain("The answer is forty-two, from lib/main.ts");
      expect(screen).toContain("✔ done: answered");
    } finally {
      term.kill();
    }
  }, 60_000);

  it("act follows a command accepted by another client like one accepted here: new line, output, finished line; Ctrl-C cancels that command only", async () => {
    model.reply(
      { text: "Listing. ", tools: [{ id: "call_ls", name: "sh", arguments: { command: "echo listed-here; exit 3" } }] },
      { tools: [{ id: "call_long", name: "sh", arguments: { command: "echo long-started; sleep 60; echo never" } }] },
      { text: "Stopped as asked." },
    );
    const term = spoolInTerminal(["act", "list", "--model", "test", "--run", "act-elsewhere", ...connection()], { cwd: ts.root });
    const other = await ts.clientIn("screen");
    try {
      await term.waitFor("Accept?", "the first Accept?");
      const [first] = (await other.call("proposal/list", { run: "act-elsewhere" })).proposals;
      await other.call("run/resolve", { run: "act-elsewhere", path: first!.path, decision: "accept" });
      await term.waitFor(/finished: failed, exit 3/, "the first command's finished line");
      let screen = await term.screen();
      // The decision starts its own line (not glued to the question), then the output, then how it ended, in words.
      const lines = screen.split("\n");
      const decided = lines.findIndex((l) => l.includes(`${first!.path} was accepted by`));
      expect(decided, screen).toBeGreaterThan(0);
      expect(lines[decided]!.trimStart().startsWith(first!.path), screen).toBe(true);
      expect(lines.slice(decided).join("\n")).toMatch(/listed-here[\s\S]*finished: failed, exit 3/);
      expect(screen).not.toMatch(/\((200|500)\)/);

      await term.waitFor(/Accept\?[\s\S]*Accept\?/, "the second Accept?");
      const [second] = (await other.call("proposal/list", { run: "act-elsewhere" })).proposals;
      await other.call("run/resolve", { run: "act-elsewhere", path: second!.path, decision: "accept" });
      await term.waitFor("long-started", "the second command's output");
      term.type("\u0003");
      await term.waitFor(/finished: cancelled by admin via spool-act: cancelled with Ctrl-C/, "the cancelled command's finished line");
      // Interrupted with Ctrl-C (README's exit codes), though the run then finished.
      expect(await term.exited).toBe(130);
      screen = await term.screen();
      expect(screen).toContain("cancelling the running command");
      expect(screen).toContain("Stopped as asked.");
      expect((await other.call("run/get", { run: "act-elsewhere" })).run.status).toBe(RUN.done);
      await eventually(async () => (await other.call("entry/get", { run: "act-elsewhere", path: second!.path })).attributes.outcome === "cancelled");
    } finally {
      term.kill();
      other.close();
    }
  }, 90_000);
});
