// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { writeParts } from "../../src/agent/interactive.js";
import { SpoolClient } from "../../src/client/spool-client.js";
import { logPath, slugFromCommand } from "../../src/core/producers/slug.js";
import { createLogger } from "../../src/logger.js";
import { ENTRY, RUN } from "../../src/protocol/status.js";
import type { ExecSpec } from "../../src/runners/backend.js";
import { RunnerClient } from "../../src/runners/client/runner-client.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

const modelEnv = (model: ScriptedModel) => ({ SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" });

/** The log path the first proposal of a run's first turn gets. */
const logOf = (command: string) => logPath(1, "sh", slugFromCommand(command));

const runStatus = (client: SpoolClient, run: string, status: number) =>
  eventually(async () => (await client.call("run/get", { run })).run.status === status, 45_000, `run ${run} at ${status}`);

/** Accepts the next proposal the model makes in `run`. */
async function acceptNext(client: SpoolClient, run: string) {
  const proposal = await client.next("run/proposal", (p) => p.run === run, 15_000);
  await client.call("run/resolve", { run, path: proposal.path, decision: "accept" });
  return proposal;
}

describe("the model drives interactive commands (scripted model)", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    // A short yield, so a command waiting for input comes back to the model still running; background work gets its own time limit.
    // kill waits for the end it causes (however loaded the machine), not a fixed 3 s.
    ts = await startTestServer({
      env: modelEnv(model),
      agent: { toolYieldMs: 500, toolKillWaitMs: 60_000 },
      commandTimeoutMs: 60_000,
      backgroundTimeoutMs: 600_000,
    });
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });
  afterEach(() => {
    model.requests.length = 0;
  });

  it("answers a command's questions with write until it completes", async () => {
    const a = await ts.clientIn("agent-io");
    const command = "printf 'Name? '; read name; printf 'Age? '; read age; echo \"$name is $age\"";
    const log = logOf(command);
    model.reply(
      { tools: [{ id: "call_ask", name: "sh", arguments: { command } }] },
      { tools: [{ id: "call_name", name: "write", arguments: { path: log, input: "Ada\n" } }] },
      { tools: [{ id: "call_age", name: "write", arguments: { path: log, input: "36\n", timeout_ms: 10_000 } }] },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "answered both questions" } }] },
    );
    const accepted = acceptNext(a, "io");
    await a.call("run/create", { alias: "io", model: "test", prompt: "Answer the questions." });
    expect((await accepted).path).toBe(log);
    await runStatus(a, "io", 200);
    expect(model.requests[0]!.tools.map((t) => t.function.name)).toEqual(["sh", "env", "get", "grep", "wait", "jobs", "write", "kill", "done"]);
    const asked = toolResult(model.requests[1]!, "call_ask")!;
    expect(asked).toContain("status: still running");
    // Whether "Name? " had arrived when the yield ran out depends on the machine; the write's answer shows it either way.
    // A write returns once the output has been quiet for 300 ms: on a loaded machine the next question, or the end,
    // can come after that, and the agent sees it at its next look. What the write answers is in that form either way.
    const name = toolResult(model.requests[2]!, "call_name")!;
    expect(name).toContain('sent: "Ada\\n"');
    expect(name).toContain("status: still running");
    expect(name).toMatch(/new since your last look, lines 1-1 of 1 ---\nName\?( Age\?)?\n--- stderr/);
    const age = toolResult(model.requests[3]!, "call_age")!;
    expect(age).toContain('sent: "36\\n"');
    const stdout = () => a.call("entry/get", { run: "io", path: `sh://turn_1/${slugFromCommand(command)}_1` });
    await eventually(async () => (await stdout()).status === ENTRY.done, 20_000, "the command to end");
    expect(await stdout()).toMatchObject({ body: "Name? Age? Ada is 36\n", attributes: { exit_code: 0 } });
    if (age.includes("status: done")) expect(age).toContain("Ada is 36");
    // What the model typed is on record as the command's input.
    const stdin = await a.call("entry/get", { run: "io", path: `sh://turn_1/${slugFromCommand(command)}_0` });
    expect(stdin.body).toBe("Ada\n36\n");
  });

  it("starts background work, finds it with jobs and stops it with kill; it gets backgroundTimeoutMs, not the command time limit", async () => {
    const a = await ts.clientIn("agent-bg");
    // The project's default runner records what it is asked to run.
    const backend = new LocalBackend();
    const specs: ExecSpec[] = [];
    const start = backend.start.bind(backend);
    backend.start = (spec) => {
      specs.push(spec);
      return start(spec);
    };
    const runner = new RunnerClient({
      connect: () => SpoolClient.connect(ts.server.url, { token: ts.server.token }),
      project: "agent-bg",
      name: "rec",
      default: true,
      backend,
      log: createLogger("silent"),
    });
    await runner.start();
    // Stopped whatever the assertions say: a failed one left the background command running after the test.
    try {
      const command = "echo serving; while :; do sleep 1; done";
      const log = logOf(command);
      model.reply(
        { tools: [{ id: "call_bg", name: "sh", arguments: { command, background: true } }] },
        { tools: [{ id: "call_jobs", name: "jobs", arguments: {} }] },
        // The kill once "serving" is stored: a command in a container of its own starts a little later than the model's next call.
        async () => {
          await eventually(
            async () => (await a.call("entry/get", { run: "bg", path: "sh://turn_1/echo-serving-while-do-sleep-1-done_1" })).body === "serving\n",
            20_000,
            "serving to be stored",
          );
          return { tools: [{ id: "call_kill", name: "kill", arguments: { path: log } }] };
        },
        { tools: [{ id: "call_jobs2", name: "jobs", arguments: {} }] },
        { tools: [{ id: "call_done", name: "done", arguments: { summary: "stopped it" } }] },
      );
      const accepted = acceptNext(a, "bg");
      await a.call("run/create", { alias: "bg", model: "test", prompt: "Start the server, then stop it." });
      expect((await accepted).attributes).toMatchObject({ background: true });
      await runStatus(a, "bg", 200);
      const started = toolResult(model.requests[1]!, "call_bg")!;
      expect(started).toMatch(/^running in the background: jobs lists it/);
      expect(started).toContain("status: still running");
      const jobs = toolResult(model.requests[2]!, "call_jobs")!;
      expect(jobs).toMatch(
        /^1 command of this run still running:\n- log:\/\/turn_1\/sh\/echo-serving-while-do-sleep-1-done: \$ echo serving; while :; do sleep 1; done — running for \d+s; stdout \d+ bytes, stderr 0 bytes \(background, runner rec\)$/,
      );
      const killed = toolResult(model.requests[3]!, "call_kill")!;
      expect(killed).toContain("sent SIGTERM");
      expect(killed).toContain("status: failed");
      expect(killed).not.toMatch(/status:? \d/);
      expect(killed).toContain("signal: SIGTERM");
      expect(toolResult(model.requests[4]!, "call_jobs2")).toBe("no command of this run is running");
      const out = await a.call("entry/get", { run: "bg", path: "sh://turn_1/echo-serving-while-do-sleep-1-done_1" });
      expect(out).toMatchObject({ body: "serving\n", status: ENTRY.failed });
      // A command of the same runner without background gets the default limit.
      await a.call("run/create", { alias: "fg" });
      const { path } = await a.call("proposal/create", { run: "fg", tool: "sh", command: "true" });
      await a.call("run/resolve", { run: "fg", path, decision: "accept" });
      await eventually(() => specs.length === 2, 10_000, "the second command to start");
      expect(specs.map((spec) => spec.timeoutMs)).toEqual([600_000, 60_000]);
    } finally {
      await runner.stop();
    }
  });

  it("background work outlives its turn and ends with the run's abort, even once the run is idle", async () => {
    const a = await ts.clientIn("agent-bg-abort");
    const command = "echo up; while :; do sleep 1; done";
    const log = logOf(command);
    model.reply(
      { tools: [{ id: "call_bg", name: "sh", arguments: { command, background: true } }] },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "left it running" } }] },
    );
    const accepted = acceptNext(a, "bga");
    await a.call("run/create", { alias: "bga", model: "test", prompt: "Start the server and leave it running." });
    await accepted;
    await runStatus(a, "bga", 200);
    const out = `sh://turn_1/${slugFromCommand(command)}_1`;
    expect((await a.call("entry/get", { run: "bga", path: out })).status).toBe(ENTRY.streaming);
    const aborted = await a.call("run/abort", { run: "bga", reason: "closing the day" });
    expect(aborted.cancelled).toEqual([log]);
    expect(aborted.run.status).toBe(RUN.aborted);
    await eventually(
      async () => (await a.call("entry/get", { run: "bga", path: out })).status === ENTRY.cancelled,
      15_000,
      "the background command to end 499",
    );
    // Nothing is left to stop now: a second abort is refused and changes nothing.
    await expect(a.call("run/abort", { run: "bga" })).rejects.toMatchObject({ data: { code: "CONFLICT", status: RUN.aborted } });
    // An idle run with nothing open is refused the same way.
    await a.call("run/create", { alias: "bga-idle" });
    await expect(a.call("run/abort", { run: "bga-idle" })).rejects.toMatchObject({ data: { code: "CONFLICT", status: RUN.done } });
    expect((await a.call("run/get", { run: "bga-idle" })).run.status).toBe(RUN.done);
  });

  it("under a terminal, a Python REPL answers, C-c interrupts it and C-d ends it", async () => {
    const a = await ts.clientIn("agent-io");
    // No exec needed: the runner's shell gives its place to python3, so the ^C is the REPL's alone (issue 26, item 3).
    const command = "python3 -q";
    const log = logOf(command);
    const stored = async (pattern: RegExp, what: string) =>
      await eventually(
        async () => pattern.test((await a.call("entry/get", { run: "tty", path: `sh://turn_1/${slugFromCommand(command)}_1` })).body),
        20_000,
        what,
      );
    /** A look (an empty write) once the channel holds `pattern`. */
    const lookOnceStored = (id: string, pattern: RegExp) => async () => {
      await stored(pattern, `${pattern} to be stored`);
      return { tools: [{ id, name: "write", arguments: { path: log, input: "", timeout_ms: 0 } }] };
    };
    model.reply(
      { tools: [{ id: "call_tty", name: "sh", arguments: { command, tty: true } }] },
      // As a careful agent does: look until the REPL's prompt is there before typing. Typed before python3 has started
      // (a loaded machine), the line's answer would come after the terminal's echo had been quiet for the write's
      // 300 ms, and the write would return with the echo alone. The look (an empty write) comes once the prompt is
      // stored: one that waited for new output would wait its whole timeout for a prompt that came before it.
      async () => {
        await eventually(
          async () => (await a.call("entry/get", { run: "tty", path: `sh://turn_1/${slugFromCommand(command)}_1` })).body.includes(">>>"),
          20_000,
          "the REPL's prompt to be stored",
        );
        return { tools: [{ id: "call_prompt", name: "write", arguments: { path: log, input: "", timeout_ms: 0 } }] };
      },
      { tools: [{ id: "call_line", name: "write", arguments: { path: log, input: "print(6 * 7)\n", timeout_ms: 10_000 } }] },
      // A write returns once the terminal has been quiet for 300 ms: on a loaded machine the answer can come after the
      // echo's quiet, so the agent looks again once it is stored (the answer is in the write's result or the look's).
      lookOnceStored("call_line_look", /42\r?\n>>>/),
      { tools: [{ id: "call_stop", name: "write", arguments: { path: log, input: "while True: pass\n\n<C-c>", timeout_ms: 10_000 } }] },
      lookOnceStored("call_stop_look", /KeyboardInterrupt/),
      { tools: [{ id: "call_end", name: "write", arguments: { path: log, input: "C-d", timeout_ms: 10_000 } }] },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "done" } }] },
    );
    const accepted = acceptNext(a, "tty");
    await a.call("run/create", { alias: "tty", model: "test", prompt: "Drive it." });
    expect((await accepted).attributes.tty).toEqual({ cols: 120, rows: 40 });
    await runStatus(a, "tty", 200);
    expect(`${toolResult(model.requests[1]!, "call_tty")}\n${toolResult(model.requests[2]!, "call_prompt")}`).toContain(">>>");
    expect(toolResult(model.requests[3]!, "call_line")).toContain(">>> print(6 * 7)");
    expect(`${toolResult(model.requests[3]!, "call_line")}\n${toolResult(model.requests[4]!, "call_line_look")}`).toMatch(/\n42\n>>>/);
    expect(`${toolResult(model.requests[5]!, "call_stop")}\n${toolResult(model.requests[6]!, "call_stop_look")}`).toContain("KeyboardInterrupt");
    // C-d ends the REPL: said by the write when it ended within the write's quiet, else by its channel just after.
    expect(toolResult(model.requests[7]!, "call_end")).toContain('sent: "\\u0004"');
    const channel = () => a.call("entry/get", { run: "tty", path: `sh://turn_1/${slugFromCommand(command)}_1` });
    await eventually(async () => (await channel()).status === ENTRY.done, 20_000, "the REPL to end");
    const stdout = await channel();
    expect(stdout.attributes.exit_code).toBe(0);
  });

  it("write and kill refuse what is not a running command of this run, and say so", async () => {
    const a = await ts.clientIn("agent-io");
    model.reply(
      {
        tools: [
          { id: "call_a", name: "write", arguments: { path: "log://turn_1/sh/nothing", input: "x" } },
          { id: "call_b", name: "kill", arguments: { path: "log://turn_1/sh/nothing", signal: "SEGV" } },
          { id: "call_c", name: "jobs", arguments: {} },
        ],
      },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "nothing to do" } }] },
    );
    await a.call("run/create", { alias: "none", model: "test", prompt: "Poke." });
    await runStatus(a, "none", 200);
    expect(toolResult(model.requests[1]!, "call_a")).toBe('error: no accepted command "log://turn_1/sh/nothing" in this run');
    expect(toolResult(model.requests[1]!, "call_b")).toMatch(/^error: invalid arguments for kill: signal/);
    expect(toolResult(model.requests[1]!, "call_c")).toBe("no command of this run is running");
  });
});

describe("modelInput off", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: modelEnv(model), agent: { toolYieldMs: 500, modelInput: "off" } });
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });

  it("offers no write or kill, and refuses them when called anyway", async () => {
    const a = await ts.clientIn("agent-off");
    model.reply(
      { tools: [{ id: "call_w", name: "write", arguments: { path: "log://turn_1/sh/x", input: "y" } }] },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "ok" } }] },
    );
    await a.call("run/create", { alias: "off", model: "test", prompt: "Try." });
    await runStatus(a, "off", 200);
    expect(model.requests[0]!.tools.map((t) => t.function.name)).toEqual(["sh", "env", "get", "grep", "wait", "jobs", "done"]);
    expect(toolResult(model.requests[1]!, "call_w")).toMatch(/modelInput is "off"/);
  });
});

describe("writeParts", () => {
  it("turns named keys into bytes under a terminal, and into signals or end of input through a pipe", () => {
    expect(writeParts("ls\n", false)).toEqual([{ kind: "bytes", data: Buffer.from("ls\n") }]);
    expect(writeParts("q<C-c>", true)).toEqual([{ kind: "bytes", data: Buffer.from("q\u0003") }]);
    expect(writeParts("C-d", true)).toEqual([{ kind: "bytes", data: Buffer.from([4]) }]);
    expect(writeParts("<Up><Enter>", true)).toEqual([{ kind: "bytes", data: Buffer.from("\u001b[A\r") }]);
    expect(writeParts("x<C-c>y<C-d>", false)).toEqual([
      { kind: "bytes", data: Buffer.from("x") },
      { kind: "signal", signal: "INT" },
      { kind: "bytes", data: Buffer.from("y") },
      { kind: "eof" },
    ]);
    expect(writeParts("a <b> <C-", false)).toEqual([{ kind: "bytes", data: Buffer.from("a <b> <C-") }]);
    expect(writeParts("", false)).toEqual([]);
  });
});
