import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { runState } from "../../src/protocol/shown-state.js";
import { ENTRY, RUN } from "../../src/protocol/status.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Issue 38, point 8: what the model reads of a command says its state in words ("still running", "rejected"),
 * never the protocol's number; and the built-in demo model, which reads those words to decide, still waits for
 * a command that outlives the yield and stops at a rejection. A real server, the embedded runner running `sh`.
 */

const runDone = (client: SpoolClient, run: string) =>
  eventually(async () => (await client.call("run/get", { run })).run.status === RUN.done, 45_000, `run ${run} to finish`);

/** The tool results and the model's text of a run, in order. */
async function conversation(client: SpoolClient, run: string): Promise<{ tools: string[]; said: string }> {
  const { messages } = await client.call("run/history", { run, limit: 500 });
  return {
    tools: messages.filter((m) => m.role === "tool").map((m) => m.text ?? ""),
    said: messages
      .filter((m) => m.role === "assistant")
      .map((m) => m.text ?? "")
      .join(""),
  };
}

describe("the state of a command, in words, as the model reads it", () => {
  let ts: TestServer;
  beforeAll(async () => {
    // A short yield: a command that sleeps comes back to the model still running.
    ts = await startTestServer({ env: { SPOOL_MODEL_DEMO: "demo/builtin" }, agent: { toolYieldMs: 300 } });
  });
  afterAll(async () => {
    await ts?.stop();
  });

  it("a command still running, then done: the demo model reads 'still running', waits, then reads how it ended", async () => {
    const a = await ts.clientIn("words");
    const proposal = a.next("run/proposal", (p) => p.run === "slow", 15_000);
    await a.call("run/create", { alias: "slow", model: "demo", prompt: "Run `sleep 1; echo finished-late`" });
    await a.call("run/resolve", { run: "slow", path: (await proposal).path, decision: "accept" });
    await runDone(a, "slow");
    const { tools, said } = await conversation(a, "slow");
    expect(tools[0]).toMatch(/^status: still running \(use wait or get for more\)$/m);
    expect(tools.at(-1)).toMatch(/^status: done$/m);
    for (const result of tools) expect(result).not.toMatch(/status:? \d/);
    expect(said).toContain("It is still running; I will wait for it.");
    expect(said).toContain("exited 0. Its output ends with:\n  finished-late");
  }, 90_000);

  it("a rejected command: the model reads 'status: rejected' and the reason, and the demo model stops there", async () => {
    const a = await ts.clientIn("words");
    const proposal = a.next("run/proposal", (p) => p.run === "no", 15_000);
    await a.call("run/create", { alias: "no", model: "demo", prompt: "Run `rm -rf build`" });
    await a.call("run/resolve", { run: "no", path: (await proposal).path, decision: "reject", reason: "keep the build" });
    await runDone(a, "no");
    const { tools, said } = await conversation(a, "no");
    expect(tools).toHaveLength(1);
    expect(tools[0]).toMatch(/^status: rejected\nlog: \S+\nreason: keep the build$/);
    expect(said).toContain("was rejected (keep the build), so I stop here.");
  }, 90_000);

  it("a run whose last command failed, or was cancelled, is not 'done': every client reads 'failed' or 'cancelled'", async () => {
    const a = await ts.clientIn("words");
    const failing = a.next("run/proposal", (p) => p.run === "exit3", 15_000);
    await a.call("run/create", { alias: "exit3", model: "demo", prompt: "Run `exit 3`" });
    await a.call("run/resolve", { run: "exit3", path: (await failing).path, decision: "accept" });
    await runDone(a, "exit3");
    const failed = (await a.call("run/get", { run: "exit3" })).run;
    expect(failed).toMatchObject({ status: RUN.done, lastCommand: "failed" });
    expect(runState(failed)).toBe("failed");
    expect((await a.call("run/list", {})).runs.find((r) => r.alias === "exit3")).toMatchObject({ lastCommand: "failed" });

    const long = a.next("run/proposal", (p) => p.run === "stopped", 15_000);
    await a.call("run/create", { alias: "stopped", model: "demo", prompt: "Run `sleep 30`" });
    const { path, channels } = await a.call("run/resolve", { run: "stopped", path: (await long).path, decision: "accept" });
    await eventually(
      async () => (await a.call("entry/get", { run: "stopped", path: channels[0]!.path })).status === ENTRY.streaming,
      15_000,
      "the command to start",
    );
    await a.call("stream/cancel", { run: "stopped", path, reason: "enough" });
    await runDone(a, "stopped");
    const cancelled = (await a.call("run/get", { run: "stopped" })).run;
    expect(cancelled.lastCommand).toBe("cancelled");
    expect(runState(cancelled)).toBe("cancelled");
  }, 90_000);

  it("a run whose last command succeeded reads 'done'", async () => {
    const a = await ts.clientIn("words");
    const ok = a.next("run/proposal", (p) => p.run === "fine", 15_000);
    await a.call("run/create", { alias: "fine", model: "demo", prompt: "Run `true`" });
    await a.call("run/resolve", { run: "fine", path: (await ok).path, decision: "accept" });
    await runDone(a, "fine");
    const done = (await a.call("run/get", { run: "fine" })).run;
    expect(done.lastCommand).toBe("succeeded");
    expect(runState(done)).toBe("done");
  }, 90_000);
});
