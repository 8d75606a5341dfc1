import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUN } from "../../src/protocol/status.js";
import { SPOOL_BIN } from "../helpers/process.js";
import { inTerminal, spoolInTerminal } from "../helpers/pty.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Issue 38 point 6: `spool act` lays the terminal out in blocks that never share a line, and says how every run ends. */
describe("spool act's layout on a terminal screen", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl }, agent: { toolYieldMs: 60_000 } });
    (await ts.clientIn("layout")).close();
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });
  const connection = () => ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "layout"];

  it("model text, the question, the decision and the output each start a line; a key that is no answer is told; an abort elsewhere ends with a final line", async () => {
    model.reset();
    model.reply(
      { text: "I will greet Ada and wait for it.", tools: [{ name: "sh", arguments: { command: "printf 'hello Ada'" } }] },
      { text: "Now a long one.", tools: [{ name: "sh", arguments: { command: "sleep 30" } }] },
    );
    const term = spoolInTerminal(["act", "greet", "--model", "test", "--run", "layout-1", ...connection()], { cwd: ts.home, cols: 120, rows: 40 });
    const other = await ts.clientIn("layout");
    try {
      await term.waitFor("(one key): ", "the first question");
      term.type("x");
      await term.waitFor("that is no answer", "the word about the key");
      await term.waitFor(/that is no answer[\s\S]*\(one key\): $/, "the question again");
      term.type("y");
      await term.waitFor("finished: done, exit 0", "the command's end");
      await term.waitFor(/Accept\?[\s\S]*Accept\?[\s\S]*Accept\?/, "the second proposal's question");
      await other.call("run/abort", { run: "layout-1", reason: "stop now" });
      expect(await term.exited).toBe(130);
      const lines = (await term.screen()).split("\n");
      const shown = lines.join("\n");
      // Each block on lines of its own.
      expect(lines, shown).toContain("│ I will greet Ada and wait for it.");
      expect(lines, shown).toContain("│ hello Ada");
      expect(
        lines.filter((l) => l.includes("accepted, running on")).every((l) => l.startsWith("  accepted, running on")),
        shown,
      ).toBe(true);
      expect(
        lines.filter((l) => l.includes("▶ proposal")).every((l) => l.startsWith("▶ proposal")),
        shown,
      ).toBe(true);
      // The abort: its final line says it, not a rejection "by run/abort" of the proposal it withdrew.
      expect(shown).not.toContain("rejected by run/abort");
      expect(lines.filter((l) => l.trim() !== "").at(-1), shown).toBe("✖ aborted: stop now");
      expect((await other.call("run/get", { run: "layout-1" })).run.status).toBe(RUN.aborted);
    } finally {
      term.kill();
      other.close();
    }
  }, 90_000);

  it("--answers-from-stdin to a terminal: the model's text, the question and the decision never share a line", async () => {
    model.reset();
    model.reply(
      { text: "[demo model] Checking.", tools: [{ name: "sh", arguments: { command: "echo one" } }] },
      { text: "Understood, stopping.", tools: [{ name: "done", arguments: { summary: "stopped" } }] },
    );
    const spool = `${JSON.stringify(process.execPath)} ${JSON.stringify(SPOOL_BIN)}`;
    const flags = connection()
      .map((a) => JSON.stringify(a))
      .join(" ");
    const term = inTerminal("/bin/sh", ["-c", `printf 'x\\nn\\n' | ${spool} act check --model test --run layout-2 --answers-from-stdin ${flags}`], {
      cwd: ts.home,
      cols: 160,
      rows: 40,
    });
    try {
      // Its proposal was rejected: exit 1 (README's exit codes).
      expect(await term.exited).toBe(1);
      const lines = (await term.screen()).split("\n");
      const shown = lines.join("\n");
      const questions = lines.filter((l) => l.includes("Accept?"));
      expect(questions.length, shown).toBe(2);
      for (const q of questions) expect(q.trimEnd().endsWith("in this run:"), shown).toBe(true);
      expect(lines, shown).toContain("  rejected");
      expect(shown).toContain("that is no answer");
      expect(lines, shown).toContain("│ [demo model] Checking.");
      // Not done: the model's summary, then the rejection's own final line (never "✔ done").
      expect(lines.filter((l) => l.trim() !== "").slice(-2), shown).toEqual(["│ stopped", "✖ not done: a proposal was rejected"]);
      expect(shown).not.toContain("✔ done");
    } finally {
      term.kill();
    }
  }, 90_000);

  // A guard (it passed before): the done line is the final line whether or not the model's answer was streamed.
  it("a run that ends with a plain answer still has its final line", async () => {
    model.reset();
    model.reply({ text: "Nothing to do here." });
    const term = spoolInTerminal(["act", "nothing", "--model", "test", "--run", "layout-3", ...connection()], { cwd: ts.home, cols: 120, rows: 20 });
    try {
      expect(await term.exited).toBe(0);
      const lines = (await term.screen()).split("\n").filter((l) => l.trim() !== "");
      expect(lines.at(-1), lines.join("\n")).toMatch(/^✔ done/);
    } finally {
      term.kill();
    }
  }, 60_000);
});
