import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

// What a principal may add through runs (limits.runsPerMinute, limits.promptBytesPerHour): past either, run/create and
// run/prompt are LIMIT_EXCEEDED with retryAfterMs and make nothing; each principal has its own, and the home none.

type Refusal = { data?: { code?: string; limit?: string; bound?: number; retryAfterMs?: number }; message: string };

describe("runs and prompts a principal may add", () => {
  let ts: TestServer;
  let admin: SpoolClient;
  const agent = async (name: string) => {
    const { token } = await admin.call("token/create", { name, role: "agent", projects: ["rates"] });
    const mine = await SpoolClient.connect(ts.server.url, { token });
    await mine.initialize("rates");
    return mine;
  };
  const refusal = (promise: Promise<unknown>) =>
    promise.then(
      () => null as Refusal | null,
      (error: Refusal) => error,
    );

  beforeAll(async () => {
    ts = await startTestServer({
      env: { SPOOL_MODEL_DEMO: "demo/builtin", SPOOL_MODEL_OTHER: "demo/builtin" },
      limits: { runsPerMinute: 3, promptBytesPerHour: 4096 },
    });
    admin = await ts.clientIn("rates");
  });
  afterAll(async () => {
    await ts.stop();
  });

  it("runs a minute: the fourth run/create is refused, naming the bound, and makes no run; another agent and the home go on", async () => {
    const a = await agent("run-maker");
    for (const alias of ["a1", "a2", "a3"]) await a.call("run/create", { alias });
    const refused = await refusal(a.call("run/create", { alias: "a4" }));
    expect(refused?.data).toMatchObject({ code: "LIMIT_EXCEEDED", limit: "runsPerMinute", bound: 3 });
    expect(refused?.data?.retryAfterMs).toBeGreaterThan(0);
    expect(refused?.message).toContain("limits.runsPerMinute");
    const runs = (await admin.call("run/list", {})).runs.map((r) => r.alias);
    expect(runs).not.toContain("a4");
    const b = await agent("other-maker");
    await b.call("run/create", { alias: "b1" });
    for (const alias of ["h1", "h2", "h3", "h4"]) await admin.call("run/create", { alias });
    a.close();
    b.close();
  });

  it("prompt bytes an hour: run/prompt past them is refused and queues nothing, not even the model change; run/create with a prompt makes no run", async () => {
    const a = await agent("prompter");
    await a.call("run/create", { alias: "p1", model: "demo", prompt: "x".repeat(3000) });
    const before = await admin.call("run/get", { run: "p1" });
    const refused = await refusal(a.call("run/prompt", { run: "p1", prompt: "y".repeat(3000), model: "other" }));
    expect(refused?.data).toMatchObject({ code: "LIMIT_EXCEEDED", limit: "promptBytesPerHour", bound: 4096 });
    expect(refused?.message).toContain("limits.promptBytesPerHour");
    const after = await admin.call("run/get", { run: "p1" });
    expect(after.run.model).toBe("demo");
    expect(after.run.model).toBe(before.run.model);
    const made = await refusal(a.call("run/create", { alias: "p2", model: "demo", prompt: "z".repeat(3000) }));
    expect(made?.data).toMatchObject({ limit: "promptBytesPerHour" });
    expect((await admin.call("run/list", {})).runs.map((r) => r.alias)).not.toContain("p2");
    // A small one still fits what is left of the hour.
    await a.call("run/prompt", { run: "p1", prompt: "small" });
    // Its loops end here (the server's stop would wait for them).
    await admin.call("run/abort", { run: "p1" });
    a.close();
  });
});
