// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and raw rows
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { ValueLink } from "../../src/runners/client/value-link.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { collect } from "../helpers/stream.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Every stored chunk of a channel entry, in seq order. */
async function storedChunks(ts: TestServer, entryPath: string): Promise<{ seq: number; data: Buffer }[]> {
  const db = ts.server.store.db;
  const row = await db.selectFrom("entries").select(["id"]).where("path", "=", entryPath).executeTakeFirstOrThrow();
  const rows = await db.selectFrom("chunks").select(["seq", "data"]).where("entry_id", "=", row.id).orderBy("seq").execute();
  return rows.map((r) => ({ seq: Number(r.seq), data: Buffer.from(r.data) }));
}

describe("in-process streaming: chunks passed as Buffers (the embedded runner's path)", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
  });
  afterAll(() => ts.stop());

  /** An in-process connection initialized into `project`, and its value link. */
  async function inProcess(project: string) {
    const transport = ts.server.connectInProcess();
    const link = ValueLink.over(transport);
    expect(link).not.toBeNull();
    const client = new SpoolClient(transport);
    await client.initialize(project, { root: ts.root });
    return { client, link: link! };
  }

  it("stores the Buffer's bytes as they are, acknowledges a repeat once, refuses a gap, and watchers get every chunk once in order", async () => {
    const { client, link } = await inProcess("values");
    const watcher = await ts.clientIn("values");
    const { path, stdout } = await proposeAndAccept(client, client, "v", "generate", { runner: "self" });
    let sub: string | undefined;
    const seen = collect(watcher, () => sub, 2);
    sub = (await watcher.call("stream/subscribe", { run: "v", path, encoding: "base64" })).subscription;
    seen.recheck();
    // Not UTF-8 (every byte value, a cut character), so no text encoding could carry it unchanged.
    const chunks = Array.from({ length: 40 }, (_, i) =>
      Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, b) => (b + i) % 256)), Buffer.from("✓").subarray(0, 2)]),
    );
    const replies = await Promise.all(chunks.map((chunk, i) => link.request<any>("stream", { run: "v", path, channel: 1, seq: i + 1, chunk })));
    expect(replies.map((r) => r.seq)).toEqual(chunks.map((_, i) => i + 1));
    expect(replies.at(-1)).toMatchObject({ bytes: 40 * 258, duplicate: false });
    // A repeat with the same bytes: acknowledged, nothing written; with other bytes: CONFLICT; a gap: SEQ_GAP.
    await expect(link.request("stream", { run: "v", path, channel: 1, seq: 3, chunk: chunks[2] })).resolves.toMatchObject({ seq: 3, duplicate: true });
    await expect(link.request("stream", { run: "v", path, channel: 1, seq: 3, chunk: chunks[4] })).rejects.toMatchObject({ data: { code: "CONFLICT" } });
    await expect(link.request("stream", { run: "v", path, channel: 1, seq: 45, chunk: chunks[0] })).rejects.toMatchObject({ data: { code: "SEQ_GAP" } });
    await client.call("stream/completed", { run: "v", path, exit_code: 0 });
    await seen.finished;

    const stored = await storedChunks(ts, stdout);
    expect(stored.map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1));
    expect(sha(Buffer.concat(stored.map((c) => c.data)))).toBe(sha(Buffer.concat(chunks)));
    expect(seen.chunks.filter((c) => c.channel === 1).map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1));
    expect(sha(seen.bytes(1))).toBe(sha(Buffer.concat(chunks)));
  });

  it("keeps the checks: a non-owner gets NOT_OWNER, bytes with an encoding or an oversized chunk are refused, and nothing is stored", async () => {
    const owner = await inProcess("checks");
    const other = await inProcess("checks");
    const { path, stdout } = await proposeAndAccept(owner.client, owner.client, "c", "check-this", { runner: "self" });
    const target = { run: "c", path, channel: 1 };
    await expect(other.link.request("stream", { ...target, seq: 1, chunk: Buffer.from("x") })).rejects.toMatchObject({ data: { code: "NOT_OWNER" } });
    await expect(owner.link.request("stream", { ...target, seq: 1, chunk: Buffer.from("x"), encoding: "base64" })).rejects.toMatchObject({
      data: { code: "INVALID_PARAMS" },
    });
    const limit = ts.server.config.limits.maxChunkBytes;
    await expect(owner.link.request("stream", { ...target, seq: 1, chunk: Buffer.alloc(limit + 1) })).rejects.toMatchObject({
      data: { code: "PAYLOAD_TOO_LARGE" },
    });
    // A Buffer where a method declares no bytes field is a wrong type, as over JSON.
    await expect(owner.link.request("run/get", { run: Buffer.from("c") })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    expect(await storedChunks(ts, stdout)).toEqual([]);
    await owner.link.request("stream", { ...target, seq: 1, chunk: Buffer.from("ok\n") });
    expect((await storedChunks(ts, stdout)).map((c) => c.data.toString())).toEqual(["ok\n"]);
  });

  it("calls sent as values and as text arrive in the order they were sent: a finish sent after chunks waits for them", async () => {
    const { client, link } = await inProcess("order");
    const { path, stdout } = await proposeAndAccept(client, client, "o", "order-this", { runner: "self" });
    const appends = Array.from({ length: 20 }, (_, i) =>
      link.request<any>("stream", { run: "o", path, channel: 1, seq: i + 1, chunk: Buffer.from(`line ${i}\n`) }),
    );
    const finished = await client.request("stream/completed", { run: "o", path, exit_code: 0 });
    expect(finished).toMatchObject({ status: ENTRY.done });
    expect((await Promise.all(appends)).map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect((await storedChunks(ts, stdout)).length).toBe(20);
  });

  it("the embedded runner streams a process's binary output through it: every byte once, in order", async () => {
    const c = await ts.clientIn("embedded-bytes");
    await c.call("run/create", { alias: "e" });
    // 3 MB of every byte value, cut mid-character at each 64 KiB boundary the runner might choose.
    const command = `perl -e 'binmode STDOUT; my $b = join("", map { chr } 0..255); print $b x 12288'`;
    const { path } = await c.call("proposal/create", { run: "e", tool: "sh", command });
    const resolved = await c.request("run/resolve", { run: "e", path, decision: "accept" });
    expect(resolved.runner).toBe("local");
    let sub: string | undefined;
    const seen = collect(c, () => sub, 2);
    sub = (await c.request("stream/subscribe", { run: "e", path, encoding: "base64" })).subscription;
    seen.recheck();
    await seen.finished;
    const expected = Buffer.concat(Array.from({ length: 12288 }, () => Buffer.from(Array.from({ length: 256 }, (_, b) => b))));
    const stdout = resolved.channels.find((ch: any) => ch.channel === 1).path;
    expect(sha(seen.bytes(1))).toBe(sha(expected));
    const stored = await storedChunks(ts, stdout);
    expect(stored.map((s) => s.seq)).toEqual(stored.map((_, i) => i + 1));
    expect(sha(Buffer.concat(stored.map((s) => s.data)))).toBe(sha(expected));
  }, 90_000);
});
