import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { producerView } from "../../src/protocol/views.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

describe("entry/get and entry/list carry a producer typed by the server", () => {
  let ts: TestServer;
  let c: SpoolClient;
  let log: string;
  let stdout: string;
  beforeAll(async () => {
    ts = await startTestServer();
    c = await ts.clientIn("wire");
    ({ path: log, stdout } = await proposeAndAccept(c, c, "w", "make", { runner: "self", env: { B: "2", A: "1" }, background: true }));
    await c.call("stream", { run: "w", path: log, channel: 1, chunk: "one\ntwo\n", seq: 1 });
    await c.call("entry/get", { run: "w", path: log }).then((got) => expect(got.producer?.state).toBe("running"));
    await c.call("stream/completed", { run: "w", path: log, exit_code: 3, duration: 1200 });
  });
  afterAll(() => ts?.stop());

  it("entry/get of a log entry: the producer with its channels, as the attributes say", async () => {
    const got = await c.call("entry/get", { run: "w", path: log });
    expect(got.channel).toBeNull();
    expect(got.producer).toMatchObject({
      path: log,
      command: "make",
      cwd: null,
      env: [
        ["B", "2"],
        ["A", "1"],
      ],
      background: true,
      decision: "accept",
      state: "failed",
      outcome: "completed",
      endStatus: ENTRY.failed,
      exitCode: 3,
      durationMs: 1200,
    });
    expect(got.producer?.channels.map((ch) => [ch.channel, ch.name, ch.status])).toEqual([
      [1, "stdout", ENTRY.failed],
      [2, "stderr", ENTRY.failed],
    ]);
    expect(got.producer?.channels[0]).toMatchObject({ path: stdout, bytes: 8, lines: 2 });
    expect(got.producer).not.toHaveProperty("ownerKey");
  });

  it("entry/list: the same producer for the log entry, a typed channel for each data channel, null for neither", async () => {
    const { entries } = await c.call("entry/list", { run: "w" });
    const byPath = new Map(entries.map((e) => [e.path, e]));
    const fromBag = producerView(byPath.get(log)!, entries);
    expect(byPath.get(log)?.producer).toEqual(fromBag);
    expect(byPath.get(stdout)?.channel).toEqual({
      channel: 1,
      name: "stdout",
      path: stdout,
      log,
      status: ENTRY.failed,
      bytes: 8,
      lines: 2,
      lastSeq: null,
      eofAt: null,
    });
    expect(byPath.get(stdout)?.producer).toBeNull();
    // A filter that leaves the channels out still lists them on the producer.
    const [only] = (await c.call("entry/list", { run: "w", pattern: "log://*" })).entries;
    expect(only?.producer?.channels.map((ch) => ch.path)).toEqual([stdout, byPath.get(log)?.producer?.channels[1]?.path]);
  });
});
