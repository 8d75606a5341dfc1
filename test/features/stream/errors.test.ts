import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../../src/client/spool-client.js";
import { ENTRY } from "../../../src/protocol/status.js";
import { proposeAndAccept } from "../../helpers/proposals.js";
import { startTestServer, type TestServer } from "../../helpers/server.js";

describe("stream and proposal errors change nothing", () => {
  let ts: TestServer;
  let c: SpoolClient;
  let path: string;
  const stdout = () => c.call("entry/get", { run: "s", path: "sh://turn_1/cat_1" });

  beforeAll(async () => {
    ts = await startTestServer({ limits: { maxChunkBytes: 1024, maxSubscriptionsPerConnection: 2 } });
    c = await ts.clientIn("errs");
    ({ path } = await proposeAndAccept(c, c, "s", "cat", { runner: "self" }));
    await c.call("stream", { run: "s", path, channel: 1, chunk: "a", seq: 1 });
  });
  afterAll(() => ts.stop());

  it("a repeated seq is acknowledged and not appended twice", async () => {
    expect(await c.call("stream", { run: "s", path, channel: 1, chunk: "a", seq: 1 })).toEqual({ channel: 1, seq: 1, bytes: 1, duplicate: true });
    expect((await stdout()).body).toBe("a");
  });

  it("a gap in seq is SEQ_GAP with the expected seq", async () => {
    await expect(c.call("stream", { run: "s", path, channel: 1, chunk: "zzz", seq: 5 })).rejects.toMatchObject({
      code: -32021,
      data: { code: "SEQ_GAP", expected: 2 },
    });
    expect((await stdout()).bytes).toBe(1);
  });

  it("without seq, chunks are numbered in order", async () => {
    expect(await c.call("stream", { run: "s", path, channel: 1, chunk: "b" })).toMatchObject({ seq: 2, bytes: 2 });
  });

  it("a chunk over the size limit is PAYLOAD_TOO_LARGE", async () => {
    await expect(c.call("stream", { run: "s", path, channel: 1, chunk: "x".repeat(1025) })).rejects.toMatchObject({
      data: { code: "PAYLOAD_TOO_LARGE", limit: 1024, bytes: 1025 },
    });
    expect((await stdout()).bytes).toBe(2);
  });

  it("invalid base64 is refused as invalid params", async () => {
    await expect(c.call("stream", { run: "s", path, channel: 1, chunk: "not base64!", encoding: "base64" })).rejects.toMatchObject({
      code: -32602,
      data: { issues: [{ path: "chunk" }] },
    });
  });

  it("a channel that does not exist, an unknown path or run is NOT_FOUND", async () => {
    await expect(c.call("stream", { run: "s", path, channel: 3, chunk: "x" })).rejects.toMatchObject({ data: { code: "NOT_FOUND", channel: 3 } });
    await expect(c.call("stream", { run: "s", path: "log://turn_1/sh/nope", channel: 1, chunk: "x" })).rejects.toMatchObject({
      data: { code: "NOT_FOUND" },
    });
    await expect(c.call("stream", { run: "nope", path, channel: 1, chunk: "x" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await expect(c.call("stream/cancel", { run: "s", path: "log://turn_1/sh/nope" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await expect(c.call("stream/subscribe", { run: "s", path, channel: 9 })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
  });

  it("unknown and mistyped fields are -32602", async () => {
    await expect(c.request("stream", { run: "s", path, channel: "1", chunk: "x" })).rejects.toMatchObject({ code: -32602 });
    await expect(c.request("stream", { run: "s", path, channel: 1, chunk: "x", extra: true })).rejects.toMatchObject({ code: -32602 });
    await expect(c.call("stream", { run: "s", path, channel: 0, chunk: "x" })).rejects.toMatchObject({ code: -32602 });
    await expect(c.request("run/resolve", { run: "s", path, decision: "maybe" })).rejects.toMatchObject({ code: -32602 });
    await expect(c.request("stream/completed", { run: "s", path, exit_code: "0" })).rejects.toMatchObject({ code: -32602 });
    expect((await stdout()).bytes).toBe(2);
  });

  it("finishing a proposal that was never accepted is CONFLICT", async () => {
    const { path: pending } = await c.call("proposal/create", { run: "s", tool: "sh", command: "never accepted" });
    await expect(c.call("stream/completed", { run: "s", path: pending, exit_code: 0 })).rejects.toMatchObject({
      data: { code: "CONFLICT", status: ENTRY.proposed },
    });
    expect((await c.call("entry/get", { run: "s", path: pending })).status).toBe(ENTRY.proposed);
  });

  it("proposal/create refuses unknown tools and a cwd outside the project root", async () => {
    await expect(c.call("proposal/create", { run: "s", tool: "rm", command: "x" })).rejects.toMatchObject({
      code: -32602,
      data: { issues: [{ path: "tool" }] },
    });
    await expect(c.call("proposal/create", { run: "s", tool: "sh", command: "x", cwd: "../.." })).rejects.toMatchObject({
      code: -32602,
      data: { issues: [{ path: "cwd" }] },
    });
    const ok = await c.call("proposal/create", { run: "s", tool: "sh", sandbox: "full", command: "pwd", cwd: "sub/dir" });
    expect((await c.call("entry/get", { run: "s", path: ok.path })).attributes.cwd).toBe("sub/dir");
  });

  it("resolving something that is not a proposal is NOT_FOUND or CONFLICT", async () => {
    await expect(c.call("run/resolve", { run: "s", path: "sh://turn_1/cat_1", decision: "accept", runner: "self" })).rejects.toMatchObject({
      data: { code: "NOT_FOUND" },
    });
    await expect(c.call("run/resolve", { run: "s", path, decision: "accept", runner: "self" })).rejects.toMatchObject({
      data: { code: "CONFLICT", status: ENTRY.done },
    });
  });

  it("subscriptions per connection are limited", async () => {
    const w = await ts.clientIn("errs");
    await w.call("stream/subscribe", { run: "s", path });
    await w.call("stream/subscribe", { run: "s", path });
    await expect(w.call("stream/subscribe", { run: "s", path })).rejects.toMatchObject({ data: { code: "LIMIT_EXCEEDED", limit: 2 } });
    await expect(w.call("stream/unsubscribe", { subscription: "sub-999" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
  });

  it("another project's connection can neither stream into, finish, watch nor resolve", async () => {
    const other = await ts.clientIn("intruder");
    await other.call("run/create", { alias: "s" });
    await expect(other.call("stream", { run: "s", path, channel: 1, chunk: "x" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await expect(other.call("stream/cancel", { run: "s", path })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await expect(other.call("stream/subscribe", { run: "s", path })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    expect((await stdout()).status).toBe(ENTRY.streaming);
  });
});
