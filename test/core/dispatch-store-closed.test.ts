import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../../src/logger.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * An accepted command's `runner/exec` is not awaited by the accept: what the runner answers is recorded later. A
 * server stopping meanwhile closes its store, and recording that the runner did not start the command then fails.
 * Seen in a CI run (q35, test/features/proposals/egress-facts): "The database connection is not open" from
 * `lose` as an unhandled rejection. The failure is the log's to say, not the process's.
 */
describe("a runner's answer to runner/exec that comes once the store is closed", () => {
  let ts: TestServer;
  const errors: string[] = [];
  /** Resolves at the first error logged that holds `text`; the others (the audit rows of the accept, written on the closed store as well) are kept. */
  let waiting: { text: string; resolve: () => void } | null = null;
  const quiet = () => {};
  const logger = {
    debug: quiet,
    info: quiet,
    warn: quiet,
    error: (message: string) => {
      errors.push(message);
      if (waiting && message.includes(waiting.text)) waiting.resolve();
    },
  } as unknown as Logger;

  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false, sandbox: "full", logger });
  });
  afterAll(() => ts.stop());

  it("is said in the log, and is no unhandled rejection", async () => {
    const runner = await ts.clientIn("p");
    let answer: (reply: { started: boolean; error?: string }) => void = () => {};
    const asked = new Promise<void>((resolve) =>
      runner.handle("runner/exec", () => {
        resolve();
        return new Promise((reply) => (answer = reply));
      }),
    );
    await runner.call("runner/attach", { name: "slow", backend: "local" });
    const person = await ts.clientIn("p");
    await person.call("run/create", { alias: "r" });
    const { path } = await person.call("proposal/create", { run: "r", tool: "sh", command: "true" });
    expect((await person.call("run/resolve", { run: "r", path, decision: "accept", runner: "slow" })).runner).toBe("slow");
    await asked;

    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      // The server stopping under the dispatch: its store closes before the runner answers.
      await ts.server.store.close();
      const text = `could not record how producer ${path} was dispatched to runner "slow"`;
      const said = new Promise<void>((resolve) => (waiting = { text, resolve }));
      answer({ started: false, error: "no such shell" });
      await said;
      expect(errors.filter((e) => e.includes(text))).toHaveLength(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
