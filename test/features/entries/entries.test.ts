import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../../src/client/spool-client.js";
import { cleanTerminalText } from "../../../src/model/terminal-text.js";
import { ENTRY } from "../../../src/protocol/status.js";
import { proposeAndAccept } from "../../helpers/proposals.js";
import { startTestServer, type TestServer } from "../../helpers/server.js";

describe("reading entries", () => {
  let ts: TestServer;
  let c: SpoolClient;
  const out = "sh://turn_1/build_1";
  beforeAll(async () => {
    ts = await startTestServer();
    c = await ts.clientIn("read");
    const { path } = await proposeAndAccept(c, c, "r", "build", { runner: "self" });
    // Lines split across chunks on purpose, and a last line without its newline.
    for (const [seq, chunk] of ["one\ntw", "o\nthree\n", "four\nfi", "ve"].entries()) {
      await c.call("stream", { run: "r", path, channel: 1, chunk, seq: seq + 1 });
    }
  });
  afterAll(() => ts.stop());

  it("returns the whole body with byte and line counts", async () => {
    expect(await c.call("entry/get", { run: "r", path: out })).toMatchObject({
      body: "one\ntwo\nthree\nfour\nfive",
      bytes: 23,
      lines: 5,
      range: { line: 1, lines: 5 },
      truncated: false,
    });
  });

  it("tail returns the last N lines", async () => {
    expect(await c.call("entry/get", { run: "r", path: out, tail: 2 })).toMatchObject({ body: "four\nfive", range: { line: 4, lines: 2 } });
    expect((await c.call("entry/get", { run: "r", path: out, tail: 99 })).body).toBe("one\ntwo\nthree\nfour\nfive");
  });

  it("line and limit return a slice, across chunk boundaries", async () => {
    expect(await c.call("entry/get", { run: "r", path: out, line: 2, limit: 2 })).toMatchObject({ body: "two\nthree\n", range: { line: 2, lines: 2 } });
    expect((await c.call("entry/get", { run: "r", path: out, line: 5 })).body).toBe("five");
    expect((await c.call("entry/get", { run: "r", path: out, line: 9 })).body).toBe("");
  });

  it("tail with line is refused as invalid params", async () => {
    await expect(c.call("entry/get", { run: "r", path: out, tail: 1, line: 1 })).rejects.toMatchObject({
      code: -32602,
      data: { issues: [{ path: "tail" }] },
    });
  });

  it("slices work on inline bodies (log entries) too", async () => {
    const list = await c.call("entry/list", { run: "r", pattern: "log://*" });
    expect(list.entries).toHaveLength(1);
    const log = await c.call("entry/get", { run: "r", path: list.entries[0]!.path, tail: 1 });
    expect(log.lines).toBe(0);
  });

  it("entry/list filters by glob and status", async () => {
    const all = await c.call("entry/list", { run: "r" });
    expect(all.entries.map((e: { path: string }) => e.path)).toEqual(["log://turn_1/sh/build", "sh://turn_1/build_1", "sh://turn_1/build_2"]);
    const streaming = await c.call("entry/list", { run: "r", status: ENTRY.streaming, pattern: "sh://turn_1/*_1" });
    expect(streaming.entries.map((e: { path: string }) => e.path)).toEqual(["sh://turn_1/build_1"]);
  });

  it("the model view strips ANSI and collapses carriage-return progress lines", async () => {
    const { path } = await proposeAndAccept(c, c, "m", "progress", { runner: "self" });
    const raw = "\u001b[32mok\u001b[0m start\n 10%\r 50%\r100%\ndone \u001b]0;title\u0007x\r\nab\bc\n";
    await c.call("stream", { run: "m", path, channel: 1, chunk: raw, seq: 1 });
    const model = await c.call("entry/get", { run: "m", path: "sh://turn_1/progress_1", view: "model" });
    expect(model.body).toBe("ok start\n100%\ndone x\nac\n");
    const rawBack = await c.call("entry/get", { run: "m", path: "sh://turn_1/progress_1" });
    expect(rawBack.body).toBe(raw);
  });

  it("cleanTerminalText keeps the longer tail of a shorter overwrite, as a terminal does", () => {
    expect(cleanTerminalText("downloading 100%\rdone")).toBe("doneloading 100%");
    expect(cleanTerminalText("\u001b[1;31mred\u001b[K\u001b[2J")).toBe("red");
  });
});
