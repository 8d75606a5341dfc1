import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../../src/client/spool-client.js";
import { proposeAndAccept } from "../../helpers/proposals.js";
import { startTestServer, type TestServer } from "../../helpers/server.js";
import { streamBuffer } from "../../helpers/stream.js";

const MiB = 1024 * 1024;

/** `count` lines of `width` bytes each (newline included), each starting with its number. */
function lines(count: number, width: number): Buffer {
  const out = Buffer.alloc(count * width, "x");
  for (let i = 0; i < count; i++) {
    out.write(String(i + 1), i * width);
    out[(i + 1) * width - 1] = 10;
  }
  return out;
}

/** A command of run `run` whose stdout holds `data`, streamed over the connection in 64 KiB chunks. */
async function channelHolding(c: SpoolClient, run: string, data: Buffer): Promise<string> {
  const { path, stdout } = await proposeAndAccept(c, c, run, "print", { runner: "self" });
  await streamBuffer(c, { run, path, channel: 1 }, data);
  await c.call("stream/completed", { run, path, exit_code: 0 });
  return stdout;
}

describe("a line slice cut by the read limit (issue 38, point 2)", () => {
  let ts: TestServer;
  let c: SpoolClient;
  beforeAll(async () => {
    // The default read limit: 8 MiB.
    ts = await startTestServer();
    c = await ts.clientIn("slices");
  });
  afterAll(() => ts?.stop());

  it("ends on a whole line, and range counts only the whole lines that came back; the next slice goes on from there", async () => {
    // 9 MB of lines of 2,000 bytes: 8 MiB, the read limit, ends inside line 4195.
    const data = lines(4718, 2000);
    const path = await channelHolding(c, "nine", data);
    const first = await c.call("entry/get", { run: "nine", path, line: 1, limit: 1_000_000, encoding: "base64" });
    const body = Buffer.from(first.body, "base64");
    expect(first.truncated).toBe(true);
    expect(first.part).toBeUndefined();
    expect(body[body.length - 1]).toBe(10);
    expect(body.length % 2000).toBe(0);
    expect(first.range).toEqual({ line: 1, lines: body.length / 2000 });
    const next = await c.call("entry/get", { run: "nine", path, line: first.range.line + first.range.lines, limit: 1_000_000, encoding: "base64" });
    expect(next.truncated).toBe(false);
    expect(Buffer.concat([body, Buffer.from(next.body, "base64")]).equals(data)).toBe(true);
    expect(first.range.lines + next.range.lines).toBe(4718);
  }, 60_000);

  it("a line longer than the limit comes back in byte-exact parts that say so; an offset past the line is refused", async () => {
    const long = Buffer.alloc(20 * MiB, "y");
    long[long.length - 1] = 10;
    const data = Buffer.concat([Buffer.from("short\n"), long, Buffer.from("after\n")]);
    const path = await channelHolding(c, "long", data);
    // Line 1 and then nothing of line 2: it does not fit.
    const first = await c.call("entry/get", { run: "long", path, line: 1, limit: 3 });
    expect(first).toMatchObject({ body: "short\n", range: { line: 1, lines: 1 }, truncated: true });
    const got: Buffer[] = [];
    let offset: number | undefined;
    const parts: { offset: number; bytes: number; end: boolean }[] = [];
    for (;;) {
      const part = await c.call("entry/get", { run: "long", path, line: 2, ...(offset === undefined ? {} : { offset }), encoding: "base64" });
      expect(part.range).toEqual({ line: 2, lines: 0 });
      parts.push(part.part!);
      got.push(Buffer.from(part.body, "base64"));
      if (part.part!.end) break;
      offset = part.part!.offset + part.part!.bytes;
    }
    expect(parts).toEqual([
      { offset: 0, bytes: 8 * MiB, end: false },
      { offset: 8 * MiB, bytes: 8 * MiB, end: false },
      { offset: 16 * MiB, bytes: 4 * MiB, end: true },
    ]);
    expect(Buffer.concat(got).equals(long)).toBe(true);
    expect((await c.call("entry/get", { run: "long", path, line: 3 })).body).toBe("after\n");
    await expect(c.call("entry/get", { run: "long", path, line: 3, offset: 6 })).rejects.toMatchObject({
      data: { code: "INVALID_PARAMS", lineBytes: 6 },
    });
    await expect(c.call("entry/get", { run: "long", path, line: 3, offset: 1, limit: 2 })).rejects.toMatchObject({ code: -32602 });
  }, 60_000);
});
