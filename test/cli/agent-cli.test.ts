import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY, RUN } from "../../src/protocol/status.js";
import { runCliInProcess, startCliInProcess } from "../helpers/cli-in-process.js";
import { spawnCli } from "../helpers/process.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

describe("spool act / ask and the client commands", () => {
  // In this process (helpers/cli-in-process.ts) but for the two that get Ctrl-C (a signal), which are subprocesses.
  let model: ScriptedModel;
  let ts: TestServer;
  const connection = () => ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "cli"];
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl }, agent: { toolYieldMs: 2_000 } });
    const c = await ts.clientIn("cli");
    c.close();
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });

  it("act: streams the model's text, asks before running, shows output with stderr apart, exits 0", async () => {
    model.reply(
      { text: "Checking the greeting. ", tools: [{ id: "call_1", name: "sh", arguments: { command: "echo hello-out; echo hello-err >&2" } }] },
      { tools: [{ id: "call_2", name: "done", arguments: { summary: "printed both" } }] },
    );
    const cli = startCliInProcess(["act", "say hello", "--model", "test", "--run", "cli-act", "--answers-from-stdin", ...connection()]);
    await cli.waitFor(/Accept\? \[y\]es/);
    expect(cli.stdout()).toContain("Checking the greeting.");
    expect(cli.stdout()).toContain("echo hello-out; echo hello-err >&2");
    cli.write("y\n");
    expect(await cli.exit).toBe(0);
    expect(cli.stdout()).toContain("hello-out");
    expect(cli.stdout()).not.toMatch(/^hello-err$/m); // only in the proposal line, never as output
    expect(cli.stderr()).toMatch(/^hello-err$/m);
    expect(cli.stdout()).toContain("done: printed both");
    expect(cli.stdout()).not.toContain("\u001b["); // not a terminal: no colour
    expect(toolResult(model.requests.at(-1)!, "call_1")).toContain("hello-out");
  });

  it("act: two model messages in a row are two lines, never run together", async () => {
    // A tool that needs no decision between them (jobs): nothing else is printed between the two replies.
    model.reply({ text: "First I look at the jobs.", tools: [{ id: "call_jobs", name: "jobs", arguments: {} }] }, { text: "Nothing runs, so I stop." });
    const cli = startCliInProcess(["act", "two messages", "--model", "test", "--run", "cli-two-messages", ...connection()]);
    expect(await cli.exit).toBe(0);
    const lines = cli.stdout().split("\n");
    expect(lines, cli.stdout()).toContain("First I look at the jobs.");
    expect(lines, cli.stdout()).toContain("Nothing runs, so I stop.");
  });

  it("act: n rejects, a accepts the same command again without asking", async () => {
    model.reply(
      { tools: [{ id: "call_r", name: "sh", arguments: { command: "rm -rf /tmp/nothing-here" } }] },
      { tools: [{ id: "call_a1", name: "sh", arguments: { command: "echo again" } }] },
      { tools: [{ id: "call_a2", name: "sh", arguments: { command: "echo again" } }] },
      { text: "Finished." },
    );
    const cli = startCliInProcess(["act", "tidy up", "--model", "test", "--run", "cli-choices", "--answers-from-stdin", ...connection()]);
    await cli.waitFor(/Accept\?/);
    cli.write("n\n");
    await cli.waitFor(/rejected[\s\S]*Accept\?/);
    cli.write("a\n");
    // One proposal was rejected: the run finished, the work asked for was not all done (exit 1, README).
    expect(await cli.exit).toBe(1);
    expect(cli.stdout().match(/Accept\?/g)).toHaveLength(2);
    expect(cli.stdout()).toMatch(/accepted by rule #\d+ \(always allow, set by admin via spool-act\)/);
    const answered = model.requests.map((r) => toolResult(r, "call_r")).find(Boolean);
    expect(answered).toContain("status: rejected");
  });

  it("act with stdin not a terminal and no flag: what it holds is no answer; the proposal waits for another client's decision", async () => {
    model.reply({ tools: [{ id: "call_p", name: "sh", arguments: { command: "echo piped-ok" } }] }, { text: "Finished." });
    const cli = startCliInProcess(["act", "from a pipe", "--model", "test", "--run", "cli-pipe", ...connection()]);
    // Typed (piped) before any question: it must not answer one.
    cli.write("y\ny\n");
    await cli.waitFor(/waiting for a decision/);
    expect(cli.stdout()).toContain("stdin is not a terminal: nothing here answers proposals");
    expect(cli.stdout()).not.toContain("Accept?");
    const c = await ts.clientIn("cli");
    const [pending] = (await c.call("proposal/list", { run: "cli-pipe" })).proposals;
    // The short reference: the run and the command's number.
    expect(cli.stdout()).toContain("spool approve cli-pipe 1   or   spool reject cli-pipe 1");
    expect((await c.call("entry/get", { run: "cli-pipe", path: pending!.path })).status).toBe(ENTRY.proposed);
    await c.call("run/resolve", { run: "cli-pipe", path: pending!.path, decision: "accept" });
    expect(await cli.exit).toBe(0);
    expect(cli.stdout()).toMatch(/was accepted by/);
    c.close();
    const both = startCliInProcess(["act", "x", "--model", "test", "--yes", "--answers-from-stdin", ...connection()]);
    expect(await both.exit).toBe(2);
    expect(both.stderr()).toContain("--yes and --answers-from-stdin exclude each other");
  });

  it("Ctrl-C cancels the streaming command; the run carries on and finishes", async () => {
    model.reply({ tools: [{ id: "call_loop", name: "sh", arguments: { command: "while true; do echo tick; sleep 0.05; done" } }] }, (request) => ({
      text: toolResult(request, "call_loop")!.includes("status: cancelled") ? "It was cancelled." : "Still running?",
    }));
    const cli = spawnCli(["act", "loop forever", "--model", "test", "--run", "cli-sigint", "--yes", ...connection()]);
    await cli.waitFor(/tick\ntick\n/);
    cli.child.kill("SIGINT");
    await cli.waitFor(/cancelling the running command/);
    // Interrupted with Ctrl-C, though the run then finished (exit 130, README).
    expect(await cli.exit).toBe(130);
    expect(cli.stdout()).toContain("It was cancelled.");
    const c = await ts.clientIn("cli");
    const { entries } = await c.call("entry/list", { run: "cli-sigint", pattern: "sh://*_1" });
    expect(entries[0]!.status).toBe(ENTRY.cancelled);
    const log = await c.call("entry/list", { run: "cli-sigint", pattern: "log://*" });
    const pid = (await c.call("entry/get", { run: "cli-sigint", path: log.entries[0]!.path })).attributes.process as { pid: number };
    await eventually(() => {
      try {
        process.kill(pid.pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    c.close();
  });

  it("a second Ctrl-C aborts the run and exits 130", async () => {
    model.reply({ text: "thinking very slowly about it ".repeat(40), delayMs: 50 });
    const cli = spawnCli(["act", "think", "--model", "test", "--run", "cli-abort", ...connection()]);
    await cli.waitFor(/thinking very slowly/);
    cli.child.kill("SIGINT");
    expect(await cli.exit).toBe(130);
    const c = await ts.clientIn("cli");
    expect((await c.call("run/get", { run: "cli-abort" })).run.status).toBe(RUN.aborted);
    c.close();
  });

  it("exits 1 when the run fails, saying why", async () => {
    model.reply({ status: 400, body: { error: { message: "maximum context length exceeded" } } });
    const cli = startCliInProcess(["act", "too much", "--model", "test", "--run", "cli-fail", ...connection()]);
    expect(await cli.exit).toBe(1);
    expect(cli.stdout()).toMatch(/failed: .*longer than the model's context/);
  });

  it("colour only on a terminal, and never with NO_COLOR", async () => {
    const { palette } = await import("../../src/cli/common.js");
    const tty = { isTTY: true } as NodeJS.WriteStream;
    const saved = process.env.NO_COLOR;
    try {
      delete process.env.NO_COLOR;
      expect(palette(tty).red("x")).toBe("\u001b[31mx\u001b[0m");
      expect(palette({ isTTY: false } as NodeJS.WriteStream).red("x")).toBe("x");
      process.env.NO_COLOR = "1";
      expect(palette(tty).red("x")).toBe("x");
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  });

  it("runs, entries, models, tail and cancel, with --json", async () => {
    // Three reads of finished state, started together, then each asserted.
    const runs = startCliInProcess(["runs", "--json", ...connection()]);
    const entries = startCliInProcess(["entries", "cli-act", "--pattern", "sh://*", "--json", ...connection()]);
    const models = startCliInProcess(["models", ...connection()]);
    expect(await runs.exit).toBe(0);
    expect(JSON.parse(runs.stdout()).map((r: { alias: string }) => r.alias)).toContain("cli-act");
    expect(await entries.exit).toBe(0);
    const listed = JSON.parse(entries.stdout()) as { path: string; status: number }[];
    expect(listed.map((e) => e.status)).toEqual([ENTRY.done, ENTRY.done]);
    expect(await models.exit).toBe(0);
    expect(models.stdout()).toMatch(/alias\s+provider\s+model\s+baseUrl\ntest\s+openai\s+test-model/);
    const tail = startCliInProcess(["tail", "cli-act", listed[0]!.path, ...connection()]);
    expect(await tail.exit).toBe(0);
    expect(tail.stdout()).toBe("hello-out\n");

    // Follow a live producer from another client, then cancel it from a third.
    const c = await ts.clientIn("cli");
    await c.call("run/create", { alias: "cli-live" });
    const { path } = await c.call("proposal/create", { run: "cli-live", tool: "sh", sandbox: "full", command: "live" });
    await c.call("run/resolve", { run: "cli-live", path, decision: "accept", runner: "self" });
    await c.call("stream", { run: "cli-live", path, channel: 1, chunk: "one\n", seq: 1 });
    const follow = startCliInProcess(["tail", "cli-live", path, "--follow", ...connection()]);
    await follow.waitFor(/one\n/);
    await c.call("stream", { run: "cli-live", path, channel: 2, chunk: "warn\n", seq: 1 });
    await c.call("stream", { run: "cli-live", path, channel: 1, chunk: "two\n", seq: 2 });
    await follow.waitFor(/two\n/);
    const cancel = startCliInProcess(["cancel", "cli-live", path, "--reason", "enough", ...connection()]);
    expect(await cancel.exit).toBe(0);
    expect(cancel.stdout()).toContain(`cancelled ${path}`);
    expect(await follow.exit).toBe(1);
    expect(follow.stdout()).toBe("one\ntwo\n");
    // How it ended is said on stderr, after its output.
    expect(follow.stderr()).toBe(`warn\n${path}: cancelled by admin via spool-cli: enough\n`);
    const bad = startCliInProcess(["tail", "cli-live", "sh://nope", ...connection()]);
    expect(await bad.exit).toBe(4);
    expect(bad.stderr()).toContain("cli-live has no entry sh://nope");
    c.close();
  }, 60_000);

  it("every command has --help", async () => {
    const commands = ["serve", "runner", "init", "ask", "act", "pending", "approve", "reject", "tail", "cancel", "runs", "entries", "runners", "models"];
    for (const command of commands) {
      const { code, out } = await runCliInProcess([command, "--help"], {}, process.cwd(), 20_000);
      expect(code, command).toBe(0);
      expect(out).toMatch(new RegExp(`Usage: spool ${command}`));
    }
  });
});
