import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestServer, type TestServer } from "../../helpers/server.js";

describe("runner/list shows liveness", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false, runnerGraceMs: 1_500 });
  });
  afterAll(() => ts.stop());

  it("a runner that went away with work is listed as gone until its grace ends", async () => {
    const runner = await ts.clientIn("live");
    let execs = 0;
    runner.handle("runner/exec", () => {
      execs++;
      return { started: true, target: { backend: "local", pid: process.pid } };
    });
    await runner.call("runner/attach", { name: "builder", backend: "local", default: true });
    const person = await ts.clientIn("live");
    await person.call("run/create", { alias: "r" });
    const { path } = await person.call("proposal/create", { run: "r", tool: "sh", command: "make" });
    await person.call("run/resolve", { run: "r", path, decision: "accept" });
    await eventually(() => execs === 1);
    expect((await person.call("runner/list", {})).runners).toMatchObject([{ name: "builder", state: "claiming", heldUntil: null, running: 1 }]);

    const before = Date.now();
    runner.close();
    await eventually(async () => (await person.call("runner/list", {})).runners[0]?.state === "gone");
    const [held] = (await person.call("runner/list", {})).runners;
    expect(held).toMatchObject({ name: "builder", backend: "local", default: true });
    expect(held!.heldUntil).toBeGreaterThanOrEqual(before + 1_500 - 50);
    // After the grace the name is free and the runner is gone from the list.
    await eventually(async () => (await person.call("runner/list", {})).runners.length === 0, 10_000);
  });
});
