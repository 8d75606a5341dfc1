import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY } from "../../../src/protocol/status.js";
import { proposeAndAccept } from "../../helpers/proposals.js";
import { startTestServer, type TestServer } from "../../helpers/server.js";

describe("ordering of stream calls on one connection", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
  });
  afterAll(() => ts.stop());

  it("appends to one channel apply in arrival order, two channels side by side, and a finish waits for both", async () => {
    const c = await ts.clientIn("ordering");
    const { path } = await proposeAndAccept(c, c, "o", "two channels", { runner: "self" });
    // Nothing is awaited until the end: the server alone keeps the order.
    const calls: Promise<unknown>[] = [];
    for (let i = 1; i <= 20; i++) {
      calls.push(c.call("stream", { run: "o", path, channel: 1, chunk: `out ${i}\n` }));
      calls.push(c.call("stream", { run: "o", path, channel: 2, chunk: `err ${i}\n` }));
    }
    const finished = c.call("stream/completed", { run: "o", path, exit_code: 0 });
    const late = c.call("stream", { run: "o", path, channel: 1, chunk: "too late\n" });
    await Promise.all(calls);
    expect((await finished).status).toBe(ENTRY.done);
    await expect(late).rejects.toMatchObject({ data: { code: "STREAM_CLOSED" } });
    const out = await c.call("entry/get", { run: "o", path: "sh://turn_1/two-channels_1" });
    const err = await c.call("entry/get", { run: "o", path: "sh://turn_1/two-channels_2" });
    expect(out.body).toBe(Array.from({ length: 20 }, (_, i) => `out ${i + 1}\n`).join(""));
    expect(err.body).toBe(Array.from({ length: 20 }, (_, i) => `err ${i + 1}\n`).join(""));
    expect([out.status, err.status]).toEqual([ENTRY.done, ENTRY.done]);
  });
});
