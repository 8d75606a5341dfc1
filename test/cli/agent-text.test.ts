import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnCli } from "../helpers/process.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const count = (text: string, part: string) => text.split(part).length - 1;

describe("spool ask / act print the model's final text once", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  const connection = () => ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "cli-text"];
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl } });
    (await ts.clientIn("cli-text")).close();
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });

  it("a text answer is streamed and not printed again as the summary", async () => {
    const answer = "The project builds with make; the tests run with make check.";
    model.reply({ text: answer });
    const cli = spawnCli(["ask", "how do I build it?", "--model", "test", "--run", "text-once", ...connection()]);
    expect(await cli.exit).toBe(0);
    expect(count(cli.stdout(), answer)).toBe(1);
    expect(cli.stdout()).toMatch(/✔ done\n/);
  }, 120_000);

  it("a summary given with done, different from the streamed text, is still shown", async () => {
    model.reply({ text: "Let me finish. ", tools: [{ id: "call_done", name: "done", arguments: { summary: "nothing to do" } }] });
    const cli = spawnCli(["ask", "anything to do?", "--model", "test", "--run", "text-summary", ...connection()]);
    expect(await cli.exit).toBe(0);
    expect(count(cli.stdout(), "Let me finish.")).toBe(1);
    expect(cli.stdout()).toContain("✔ done: nothing to do");
  }, 120_000);

  it("an answer retried after a cut connection is shown once", async () => {
    const answer = "Everything is up to date, nothing needs to change here.";
    model.reply({ text: answer, cutAfter: 3 }, { text: answer });
    const cli = spawnCli(["ask", "status?", "--model", "test", "--run", "text-cut", ...connection()]);
    expect(await cli.exit).toBe(0);
    expect(count(cli.stdout(), answer)).toBe(1);
  }, 120_000);
});
