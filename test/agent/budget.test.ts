import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY, RUN } from "../../src/protocol/status.js";
import { runCli } from "../helpers/process.js";
import { type RecordedRequest, type Reply, ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

const USAGE = { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 };

/** `get` turn after turn, each reporting 120 tokens; done at `turns`. */
function turns(count: number) {
  let turn = 0;
  return (_request: RecordedRequest): Reply => {
    turn++;
    if (turn >= count) return { tools: [{ id: `done_${turn}`, name: "done", arguments: { summary: `done after ${turn} turns` } }], usage: USAGE };
    return { text: `Turn ${turn}.`, tools: [{ id: `get_${turn}`, name: "get", arguments: { path: `sh://turn_${turn}/x` } }], usage: USAGE };
  };
}

async function runStatus(client: SpoolClient, run: string, status: number, timeoutMs = 20_000) {
  await eventually(async () => (await client.call("run/get", { run })).run.status === status, timeoutMs, `run ${run} at ${status}`);
}

describe("budgets: a run pauses at its limit and goes on when a person raises it", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  const home = tempDir("spool-budget-home-");
  const start = () =>
    startTestServer({
      home,
      env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl },
      // $1000 per million tokens: a turn's 120 tokens cost $0.12.
      agent: { prices: { "test-model": { input: 1000, output: 1000 } } },
    });
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await start();
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });
  afterEach(() => model.reset());

  it("at a token budget: no further model call, the state says which budget, it stays paused over a restart, and run/budget lets it go on", async () => {
    const next = turns(5);
    model.reply(...Array.from({ length: 10 }, () => next));
    let a = await ts.clientIn("spend");
    const reached: unknown[] = [];
    a.on("run/state", (p) => p.run === "tok" && p.event === "budget reached" && reached.push(p.budget));
    await a.call("run/create", { alias: "tok", model: "test", prompt: "Read them all", budget: { tokens: 250 } });
    await runStatus(a, "tok", RUN.paused);
    // Calls of 120 tokens: 120, 240 (under 250), 360 — then paused before a fourth.
    expect(model.requests).toHaveLength(3);
    const { run, usage } = await a.call("run/get", { run: "tok" });
    expect(run.paused).toEqual({ kind: "tokens", limit: 250, used: 360 });
    expect(run.budget).toEqual({ tokens: 250 });
    expect(run.spend).toMatchObject({ tokens: 360, costUsd: 0.36, commands: 0 });
    expect(usage.costUsd).toBeCloseTo(0.36, 6);
    await eventually(() => reached.length === 1);
    expect(reached[0]).toEqual({ kind: "tokens", limit: 250, used: 360 });

    // A restart: still paused, and no model call.
    await ts.stop();
    ts = await start();
    a = await ts.clientIn("spend");
    expect((await a.call("run/get", { run: "tok" })).run.status).toBe(RUN.paused);
    expect(model.requests).toHaveLength(3);

    // Raised, but not past what it spent: still paused.
    const low = await a.call("run/budget", { run: "tok", set: { tokens: 300 } });
    expect(low.resumed).toBe(false);
    expect(low.run.status).toBe(RUN.paused);
    expect(model.requests).toHaveLength(3);

    const raised = await a.call("run/budget", { run: "tok", add: { tokens: 1000 } });
    expect(raised.resumed).toBe(true);
    expect(raised.run.budget).toEqual({ tokens: 1300 });
    await runStatus(a, "tok", RUN.done);
    expect(model.requests).toHaveLength(5);
    // It went on from where it was: the fourth request holds the third turn's answer.
    expect(JSON.stringify(model.requests[3]!.messages)).toContain("get_3");
    const audit = await a.call("audit/list", {});
    expect(audit.events.filter((e) => e.action === "budget").map((e) => e.detail)).toEqual([
      { budget: { tokens: 300 }, resumed: false },
      { budget: { tokens: 1300 }, resumed: true },
    ]);
  });

  it("at a cost budget: spool pending shows it, spool budget RUN +1$ raises it from the CLI, and the run ends", async () => {
    const next = turns(4);
    model.reply(...Array.from({ length: 10 }, () => next));
    const a = await ts.clientIn("spend");
    await a.call("run/create", { alias: "cost", model: "test", prompt: "Go", budget: { costUsd: 0.2 } });
    await runStatus(a, "cost", RUN.paused);
    expect(model.requests).toHaveLength(2);
    const cli = (args: string[]) => runCli(args, { SPOOL_HOME: ts.home }, ts.root, 30_000);
    const pending = await cli(["pending", "--project", "spend"]);
    expect(pending.out).toContain("cost  paused: its cost budget of $0.20 was reached ($0.24 used)");
    expect(pending.out).toContain("spool budget cost +1$");
    const shown = await cli(["show", "cost", "--project", "spend"]);
    expect(shown.out).toContain("spent $0.24 of $0.20 · 240 tokens");
    const runs = await cli(["runs", "--project", "spend"]);
    expect(runs.out).toMatch(/cost\s+paused/);
    const bad = await cli(["budget", "cost", "+2 euros", "--project", "spend"]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('"+2 euros" is not a budget change');
    expect((await a.call("run/get", { run: "cost" })).run.status).toBe(RUN.paused);
    const raised = await cli(["budget", "cost", "+1$", "--project", "spend"]);
    expect(raised.err).toBe("");
    expect(raised.out).toContain("budget cost $1.20");
    expect(raised.out).toContain("resumed");
    await runStatus(a, "cost", RUN.done);
    expect(model.requests).toHaveLength(4);
  });

  it("stopping a paused run ends it cleanly; a project's default budget applies to runs with none of their own", async () => {
    await ts.stop();
    ts = await startTestServer({
      home,
      env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl },
      agent: { budgets: { projects: { capped: { tokens: 100 } }, default: { tokens: 100_000 } } },
    });
    const next = turns(5);
    model.reply(...Array.from({ length: 10 }, () => next));
    const a = await ts.clientIn("capped");
    await a.call("run/create", { alias: "stop-me", model: "test", prompt: "Go" });
    await runStatus(a, "stop-me", RUN.paused);
    expect((await a.call("run/get", { run: "stop-me" })).run.budget).toEqual({ tokens: 100 });
    expect(model.requests).toHaveLength(1);
    const stopped = await a.call("run/abort", { run: "stop-me", reason: "enough" });
    expect(stopped.run.status).toBe(RUN.aborted);
    await expect(a.call("run/budget", { run: "stop-me", add: { tokens: 10 } })).resolves.toMatchObject({ resumed: false });
    expect((await a.call("run/get", { run: "stop-me" })).run.status).toBe(RUN.aborted);
    expect(model.requests).toHaveLength(1);
    await expect(a.call("run/budget", { run: "stop-me" } as never)).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
  });

  it("a commands budget is never overshot by one reply proposing several: the run pauses before the command past it, and proposes it once raised", async () => {
    const sh = (n: number) => ({ id: `sh_${n}`, name: "sh", arguments: { command: `echo command-${n}` } });
    model.reply({ text: "Three at once.", tools: [sh(1), sh(2), sh(3)] }, { tools: [{ id: "done_c", name: "done", arguments: { summary: "ran three" } }] });
    const a = await ts.clientIn("spend");
    const proposed: string[] = [];
    a.on("run/proposal", (p) => p.run === "cmds" && proposed.push(p.command));
    const accept = async (n: number) => {
      await eventually(() => proposed.length >= n, 20_000, `proposal ${n}`);
      const pending = await a.call("entry/list", { run: "cmds", pattern: "log://*", status: ENTRY.proposed });
      expect(pending.entries).toHaveLength(1);
      await a.call("run/resolve", { run: "cmds", path: pending.entries[0]!.path, decision: "accept" });
    };
    await a.call("run/create", { alias: "cmds", model: "test", prompt: "Run three commands", budget: { commands: 2 } });
    await accept(1);
    await accept(2);
    await runStatus(a, "cmds", RUN.paused);
    const { run } = await a.call("run/get", { run: "cmds" });
    expect(run.paused).toEqual({ kind: "commands", limit: 2, used: 2 });
    // The third was never proposed; the model was asked once.
    expect(proposed).toEqual(["echo command-1", "echo command-2"]);
    expect((await a.call("entry/list", { run: "cmds", pattern: "log://*" })).entries).toHaveLength(2);
    expect(model.requests).toHaveLength(1);
    const raised = await a.call("run/budget", { run: "cmds", add: { commands: 1 } });
    expect(raised.resumed).toBe(true);
    await accept(3);
    await runStatus(a, "cmds", RUN.done);
    expect(proposed).toEqual(["echo command-1", "echo command-2", "echo command-3"]);
    expect((await a.call("run/get", { run: "cmds" })).run.spend).toMatchObject({ commands: 3 });
    // Its last model call held all three results.
    expect(model.requests).toHaveLength(2);
    expect(model.requests[1]!.messages.filter((m) => m.role === "tool")).toHaveLength(3);
  });

  it("a seconds budget counts model calls and tool steps, not the time a proposal waits for a person", async () => {
    model.reply(
      { text: "One command.", tools: [{ id: "sh_s", name: "sh", arguments: { command: "echo waited" } }] },
      // One word, then 4 s before the rest: a model call as long as the whole budget.
      { text: "Slow.", tools: [{ id: "get_s", name: "get", arguments: { path: "sh://turn_1/x" } }], delayMs: 4_000 },
      { tools: [{ id: "done_s", name: "done", arguments: { summary: "finished" } }] },
    );
    const a = await ts.clientIn("spend");
    const proposal = a.next("run/proposal", (p) => p.run === "secs", 20_000);
    await a.call("run/create", { alias: "secs", model: "test", prompt: "Run one command", budget: { seconds: 4 } });
    const notice = await proposal;
    // Longer than the budget: a person taking their time is not the run working.
    const asked = Date.now();
    await eventually(() => Date.now() - asked >= 5_000, 15_000, "five seconds of waiting for a person");
    const waiting = (await a.call("run/get", { run: "secs" })).run;
    expect(waiting.status).toBe(RUN.waiting);
    expect(waiting.spend!.seconds).toBeLessThan(4);
    await a.call("run/resolve", { run: "secs", path: notice.path, decision: "accept" });
    // The second model call takes 4 s: the budget is reached, so the run pauses before the third.
    await runStatus(a, "secs", RUN.paused);
    const { run } = await a.call("run/get", { run: "secs" });
    expect(run.paused).toMatchObject({ kind: "seconds", limit: 4 });
    expect(run.paused!.used).toBeGreaterThanOrEqual(4 + waiting.spend!.seconds - 0.1);
    expect(model.requests).toHaveLength(2);
  });
});

describe("a run's own budget at run/create", () => {
  it("below person, only within the configured limits: over one is FORBIDDEN naming it, and no run is made; within them, or as a person, it is the run's", async () => {
    const ts = await startTestServer({
      agent: { budgets: { default: { tokens: 1000 }, principals: { "ci-agent": { costUsd: 5 } } } },
    });
    try {
      const admin = await ts.clientIn("app");
      const { SpoolClient } = await import("../../src/client/spool-client.js");
      const as = async (name: string, role: "agent" | "person") => {
        const { token } = await admin.call("token/create", { name, role, projects: ["app"] });
        const c = await SpoolClient.connect(ts.server.url, { token });
        await c.initialize("app");
        return c;
      };
      const agent = await as("ci-agent", "agent");
      try {
        const refused = await agent.call("run/create", { alias: "lifted", budget: { costUsd: 1e9, tokens: 10 } }).then(
          () => null,
          (error: { message: string; data?: Record<string, unknown> }) => error,
        );
        expect(refused?.data).toMatchObject({ code: "FORBIDDEN", limits: { tokens: 1000, costUsd: 5 }, held: "agent", needed: "person" });
        expect(refused?.message).toContain("costUsd 1000000000 over 5");
        expect((await admin.call("run/list", {})).runs.map((r) => r.alias)).not.toContain("lifted");
        const tighter = await agent.call("run/create", { alias: "tighter", budget: { costUsd: 1, tokens: 1000 } });
        expect(tighter.run.budget).toEqual({ costUsd: 1, tokens: 1000 });
      } finally {
        agent.close();
      }
      const person = await as("pat", "person");
      try {
        const raised = await person.call("run/create", { alias: "raised", budget: { tokens: 50_000 } });
        expect(raised.run.budget).toEqual({ tokens: 50_000 });
      } finally {
        person.close();
      }
    } finally {
      await ts.stop();
    }
  });
});

describe("a run's queued prompts", () => {
  it("are bounded per run (limits.maxOpenLoopsPerRun): the next run/prompt is LIMIT_EXCEEDED and queues nothing; once one ends, another fits", async () => {
    const model = await ScriptedModel.start();
    let answer: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      answer = resolve;
    });
    model.reply(async () => {
      await held;
      return { tools: [{ id: "done_1", name: "done", arguments: { summary: "first" } }] };
    });
    const ts = await startTestServer({
      env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl },
      limits: { maxOpenLoopsPerRun: 2 },
    });
    try {
      const c = await ts.clientIn("loops");
      await c.call("run/create", { alias: "busy", model: "test", prompt: "first" });
      await model.received(1);
      await c.call("run/prompt", { run: "busy", prompt: "second" });
      const refused = c.call("run/prompt", { run: "busy", prompt: "third" });
      await expect(refused).rejects.toMatchObject({ data: { code: "LIMIT_EXCEEDED", limit: "maxOpenLoopsPerRun", bound: 2, run: "busy" } });
      model.reply(
        { tools: [{ id: "done_2", name: "done", arguments: { summary: "second" } }] },
        { tools: [{ id: "done_3", name: "done", arguments: { summary: "third" } }] },
      );
      answer();
      await eventually(async () => (await c.call("run/get", { run: "busy" })).run.status === RUN.done, 20_000, "the two loops done");
      expect((await c.call("run/prompt", { run: "busy", prompt: "third" })).loop).toBe(3);
      await eventually(async () => (await c.call("run/get", { run: "busy" })).run.status === RUN.done, 20_000, "the third loop done");
      expect(model.requests).toHaveLength(3);
    } finally {
      await ts.stop();
      await model.close();
    }
  });
});
