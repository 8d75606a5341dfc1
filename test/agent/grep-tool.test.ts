import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoAnswer } from "../../src/model/demo.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

const modelEnv = (model: ScriptedModel) => ({ SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" });

/** The note a cut view of an output ends its head with (src/model/model-view.ts). */
const CUT =
  /\[… (\d+) lines \(about \d+ bytes\) of (\S+) left out \(50000 lines in all\); read them with the get tool: .* …\]\n\[… or search all of its 50000 lines with the grep tool, no command and no approval needed: \{"path": "(\S+)", "pattern": "error"\} …\]/;

describe("the model searches a cut output with the grep tool", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    const home = tempDir();
    // No failure patterns: the one odd line of the output is not kept in the view, only the search finds it.
    writeFileSync(join(home, "config.json"), JSON.stringify({ failurePatterns: [] }));
    ts = await startTestServer({ home, env: modelEnv(model), agent: { toolYieldMs: 60_000 } });
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });

  it("finds a line past the cut in one call, without proposing a command", async () => {
    const a = await ts.clientIn("agent");
    const command = "seq 1 50000 | sed 's/^31337$/widget 31337 drifted by 4 mm/'";
    let grepResult = "";
    let searched = "";
    model.reply(
      { tools: [{ id: "call_build", name: "sh", arguments: { command } }] },
      (request) => {
        const seen = toolResult(request, "call_build") ?? "";
        const cut = CUT.exec(seen);
        expect(cut, seen.slice(0, 2000)).not.toBeNull();
        expect(seen).not.toContain("drifted");
        expect(request.tools.map((t) => t.function.name)).toContain("grep");
        searched = cut![3]!;
        return { tools: [{ id: "call_grep", name: "grep", arguments: { path: searched, pattern: "drifted", context: 1 } }] };
      },
      (request) => {
        grepResult = toolResult(request, "call_grep") ?? "";
        return { text: "Line 31337 says the widget drifted." };
      },
    );
    const proposal = a.next("run/proposal", (p) => p.run === "g1", 15_000);
    await a.call("run/create", { alias: "g1", model: "test", prompt: "check the widgets" });
    await a.call("run/resolve", { run: "g1", path: (await proposal).path, decision: "accept" });
    await eventually(async () => (await a.call("run/get", { run: "g1" })).run.status === 200, 30_000, "the run done");
    expect(model.requests).toHaveLength(3);
    expect(grepResult).toBe(
      [`${searched}: 1 line matching "drifted" (50000 lines searched; done)`, "31336-31336", "31337:widget 31337 drifted by 4 mm", "31338-31338"].join("\n"),
    );
    // One command in all: the search proposed nothing.
    expect((await a.call("entry/list", { run: "g1", pattern: "log://*" })).entries).toHaveLength(1);
  }, 60_000);

  it("the demo model names the tool when the view it read was cut", () => {
    const content = [
      "status: done",
      "log: log://turn_1/sh/seq",
      "exit code: 0",
      "--- stdout (sh://turn_1/seq_1, 50000 lines, 288894 bytes) ---",
      "1",
      '[… 49900 lines (about 288000 bytes) of sh://turn_1/seq_1 left out (50000 lines in all); read them with the get tool: {"path": "sh://turn_1/seq_1", "line": 51, "limit": 200} …]',
      "50000",
    ].join("\n");
    const answer = demoAnswer(
      [
        { role: "user", content: "run `seq 1 50000`" },
        { role: "tool", tool_call_id: "demo_1", content },
      ],
      ["sh", "get", "grep", "done"],
    );
    expect(answer.text).toContain("49900 lines of sh://turn_1/seq_1 were left out of my view; the grep tool searches all of it");
  });
});
