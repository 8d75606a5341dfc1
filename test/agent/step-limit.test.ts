import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { loadConfig } from "../../src/config/config.js";
import { RUN } from "../../src/protocol/status.js";
import { type Reply, ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/** `get` turn after turn; `done` at `count` (Infinity: never). */
function turns(count: number, state: { turn: number }) {
  return (): Reply => {
    state.turn++;
    if (state.turn >= count) return { tools: [{ id: `done_${state.turn}`, name: "done", arguments: { summary: `done after ${state.turn}` } }] };
    return { text: `Turn ${state.turn}.`, tools: [{ id: `get_${state.turn}`, name: "get", arguments: { path: `sh://turn_${state.turn}/x` } }] };
  };
}

async function runStatus(client: SpoolClient, run: string, status: number, timeoutMs = 60_000) {
  await eventually(async () => (await client.call("run/get", { run })).run.status === status, timeoutMs, `run ${run} at ${status}`);
}

describe("the model steps a prompt's loop may take: 50 unless config.json or SPOOL_MAX_STEPS says otherwise", () => {
  it("config.json maxSteps sets it, SPOOL_MAX_STEPS wins, 0 is no limit; a wrong value is refused, naming the setting", () => {
    const home = tempDir("spool-steps-config-");
    expect(loadConfig({ home }, {}).agent.maxStepsPerLoop).toBe(50);
    writeFileSync(join(home, "config.json"), JSON.stringify({ maxSteps: 400 }));
    expect(loadConfig({ home }, {}).agent.maxStepsPerLoop).toBe(400);
    expect(loadConfig({ home }, { SPOOL_MAX_STEPS: "0" }).agent.maxStepsPerLoop).toBe(0);
    expect(() => loadConfig({ home }, { SPOOL_MAX_STEPS: "many" })).toThrow(/SPOOL_MAX_STEPS must be a non-negative integer, got "many"/);
    writeFileSync(join(home, "config.json"), JSON.stringify({ maxSteps: -1 }));
    expect(() => loadConfig({ home }, {})).toThrow(/"maxSteps" must be a whole number of model calls, 0 or more/);
  });

  describe("through a server whose config.json sets it", () => {
    let model: ScriptedModel;
    let ts: TestServer;
    beforeAll(async () => {
      model = await ScriptedModel.start();
      const home = tempDir("spool-steps-home-");
      writeFileSync(join(home, "config.json"), JSON.stringify({ maxSteps: 4 }));
      ts = await startTestServer({ home, env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl } });
    });
    afterAll(async () => {
      await ts.stop();
      await model.close();
    });
    afterEach(() => model.reset());

    it("a loop that would take a fifth step fails, saying the limit; one that ends at its fourth is done", async () => {
      const a = await ts.clientIn("steps");
      const endless = { turn: 0 };
      model.reply(...Array.from({ length: 10 }, () => turns(Number.POSITIVE_INFINITY, endless)));
      await a.call("run/create", { alias: "endless", model: "test", prompt: "Read on" });
      await runStatus(a, "endless", RUN.failed);
      expect(model.requests).toHaveLength(4);
      const { entries } = await a.call("entry/list", { run: "endless", pattern: "error://*" });
      expect((await a.call("entry/get", { run: "endless", path: entries[0]!.path })).body).toBe("the loop took 4 model steps without finishing (limit 4)");

      model.reset();
      const four = { turn: 0 };
      model.reply(...Array.from({ length: 10 }, () => turns(4, four)));
      await a.call("run/create", { alias: "four", model: "test", prompt: "Read four" });
      await runStatus(a, "four", RUN.done);
      expect(four.turn).toBe(4);
    });
  });

  it("SPOOL_MAX_STEPS=0: a loop of 60 model steps ends done", async () => {
    const model = await ScriptedModel.start();
    const ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, SPOOL_MAX_STEPS: "0" } });
    try {
      const a = await ts.clientIn("steps");
      const state = { turn: 0 };
      model.reply(...Array.from({ length: 70 }, () => turns(60, state)));
      await a.call("run/create", { alias: "long", model: "test", prompt: "Read sixty" });
      // Ended either way: a limit still at 50 fails it there.
      let status = 0;
      await eventually(
        async () => ([RUN.done, RUN.failed] as number[]).includes((status = (await a.call("run/get", { run: "long" })).run.status)),
        120_000,
        "the run to end",
      );
      expect(status).toBe(RUN.done);
      expect(state.turn).toBe(60);
    } finally {
      await ts.stop();
      await model.close();
    }
  }, 150_000);
});
