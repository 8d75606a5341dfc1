import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY, RUN } from "../../src/protocol/status.js";
import { spoolInTerminal } from "../helpers/pty.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

/** `spool act` in a real terminal (node-pty): what a person types and when. */
describe("spool act in a terminal", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl }, agent: { toolYieldMs: 60_000 } });
    (await ts.clientIn("pty")).close();
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });

  it("keys typed while a command runs (meant for it) never answer the next Accept?: it waits for a key pressed after it appears", async () => {
    model.reply(
      { tools: [{ id: "call_read", name: "sh", arguments: { command: `printf '%s? ' your-name; read n; echo "got:$n"` } }] },
      { tools: [{ id: "call_second", name: "sh", arguments: { command: "echo second-ran" } }] },
      { text: "Both ran." },
    );
    const term = spoolInTerminal(
      ["act", "ask my name", "--model", "test", "--run", "pty-act", "--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "pty"],
      { cols: 200, rows: 50, cwd: ts.root },
    );
    const exited = term.exited;
    const prompts = () => term.raw().match(/Accept\?/g)?.length ?? 0;
    const client = await ts.clientIn("pty");
    try {
      await eventually(() => prompts() === 1, 30_000, "the first Accept?");
      term.type("y\r");
      await eventually(() => term.raw().includes("your-name? "), 30_000, "the command's question");
      const [first] = (await client.call("entry/list", { run: "pty-act", pattern: "log://*" })).entries;
      // The person answers the command's question here: a whole line, then a key without Enter.
      term.type("y\r");
      term.type("y");
      // act says, once a key is typed, where typing goes and how to reach the command.
      const note = "keys typed here do not reach the command; to answer it: spool attach pty-act 1, or spool input pty-act 1 TEXT";
      await eventually(() => term.raw().includes(note), 30_000, "the note on typing");
      // The command gets its answer the way act said.
      await client.input("pty-act", first!.path, "bob\n");
      await eventually(() => term.raw().includes("got:bob"), 30_000, "the command's answer");
      await eventually(() => prompts() === 2, 30_000, "the second Accept?");
      expect(term.raw()).toMatch(/\(ignored \d+ bytes typed before this question\)/);
      const second = (await client.call("proposal/list", { run: "pty-act" })).proposals;
      expect(second.map((p) => p.command)).toEqual(["echo second-ran"]);
      // A key that is no answer: asked again. By then anything buffered would have answered; it is still pending.
      term.type("x");
      await eventually(() => prompts() === 3, 30_000, "the question asked again");
      expect((await client.call("entry/get", { run: "pty-act", path: second[0]!.path })).status).toBe(ENTRY.proposed);
      term.type("y");
      expect(await exited).toBe(0);
      expect(term.raw()).toContain("second-ran");
      expect(toolResult(model.requests[1]!, "call_read")).toContain("got:bob");
      expect((await client.call("entry/get", { run: "pty-act", path: second[0]!.path })).attributes.resolvedBy).toBe("admin via spool-act");
    } finally {
      term.kill();
      client.close();
    }
  }, 90_000);

  it("at a one-key prompt Ctrl-D rejects and Ctrl-C aborts the run (exit 130)", async () => {
    model.reply(
      { tools: [{ id: "call_one", name: "sh", arguments: { command: "echo one" } }] },
      { tools: [{ id: "call_two", name: "sh", arguments: { command: "echo two" } }] },
    );
    const term = spoolInTerminal(
      ["act", "two", "--model", "test", "--run", "pty-keys", "--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "pty"],
      { cols: 200, rows: 50, cwd: ts.root },
    );
    const exited = term.exited;
    const client = await ts.clientIn("pty");
    try {
      await eventually(() => term.raw().includes("Accept?"), 30_000, "the first Accept?");
      term.type("\u0004");
      await eventually(() => term.raw().includes("rejected"), 30_000, "the rejection");
      await eventually(() => (term.raw().match(/Accept\?/g)?.length ?? 0) === 2, 30_000, "the second Accept?");
      term.type("\u0003");
      expect(await exited).toBe(130);
      expect((await client.call("run/get", { run: "pty-keys" })).run.status).toBe(RUN.aborted);
      const logs = (await client.call("entry/list", { run: "pty-keys", pattern: "log://*" })).entries;
      expect(logs.map((e) => e.status)).toEqual([ENTRY.rejected, ENTRY.rejected]);
    } finally {
      term.kill();
      client.close();
    }
  }, 90_000);
});
