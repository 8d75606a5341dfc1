// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and raw rows
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { proposeAndAccept } from "../../helpers/proposals.js";
import { startTestServer, type TestServer } from "../../helpers/server.js";
import { collect, streamBuffer } from "../../helpers/stream.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("bulk and binary streams over WebSocket", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
  });
  afterAll(() => ts.stop());

  it("a 100 MB stream is stored byte for byte, and tail/slice reads come from the counters", async () => {
    const c = await ts.clientIn("bulk");
    const { path, stdout } = await proposeAndAccept(c, c, "big", "generate", { runner: "self" });
    // Lines of 100 bytes, so line slices are checkable by arithmetic.
    const line = (i: number) => `${String(i).padStart(8, "0")} ${"x".repeat(90)}\n`;
    const lines = 1_048_576;
    const data = Buffer.alloc(lines * 100);
    for (let i = 0; i < lines; i++) data.write(line(i), i * 100, "latin1");
    const lastSeq = await streamBuffer(c, { run: "big", path, channel: 1 }, data, { encoding: "utf8" });
    expect(lastSeq).toBe(1600);
    await c.call("stream/completed", { run: "big", path, exit_code: 0 });

    const entryPath = stdout;
    const db = ts.server.store.db;
    const row = await db.selectFrom("entries").select(["id", "bytes", "newlines", "last_seq"]).where("path", "=", entryPath).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ bytes: data.length, newlines: lines, last_seq: 1600 });
    const hash = createHash("sha256");
    for (let after = 0; after < 1600; after += 100) {
      const page = await db.selectFrom("chunks").select("data").where("entry_id", "=", row.id).where("seq", ">", after).orderBy("seq").limit(100).execute();
      for (const chunk of page) hash.update(chunk.data);
    }
    expect(hash.digest("hex")).toBe(sha(data));

    const tail = await c.call("entry/get", { run: "big", path: entryPath, tail: 3 });
    expect(tail).toMatchObject({ lines: lines, bytes: data.length, range: { line: lines - 2, lines: 3 } });
    expect(tail.body).toBe(line(lines - 3) + line(lines - 2) + line(lines - 1));
    const slice = await c.call("entry/get", { run: "big", path: entryPath, line: 500_001, limit: 2 });
    expect(slice.body).toBe(line(500_000) + line(500_001));
    await expect(c.call("entry/get", { run: "big", path: entryPath })).rejects.toMatchObject({ data: { code: "PAYLOAD_TOO_LARGE" } });
  }, 120_000);

  it("binary bytes round-trip through stream, entry/get and watchers in base64", async () => {
    const c = await ts.clientIn("bin");
    const w = await ts.clientIn("bin");
    const { path, stdout } = await proposeAndAccept(c, c, "bin", "cat /dev/urandom", { runner: "self" });
    const data = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(200_000)]);
    let sub: string | undefined;
    const seen = collect(w, () => sub, 2);
    sub = (await w.call("stream/subscribe", { run: "bin", path, encoding: "base64" })).subscription;
    seen.recheck();
    await streamBuffer(c, { run: "bin", path, channel: 1 }, data, { chunkSize: 7777 });
    await c.call("stream/completed", { run: "bin", path, exit_code: 0 });
    await seen.finished;
    expect(sha(seen.bytes(1))).toBe(sha(data));
    const stored = await c.call("entry/get", { run: "bin", path: stdout, encoding: "base64" });
    expect(sha(Buffer.from(stored.body, "base64"))).toBe(sha(data));
  });

  it("several watchers get identical bytes in identical order, live and replayed", async () => {
    const c = await ts.clientIn("many");
    const { path } = await proposeAndAccept(c, c, "many", "seq 1 100000", { runner: "self" });
    const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => `${i}\n`).join(""));
    const half = data.length >> 1;
    await streamBuffer(c, { run: "many", path, channel: 1 }, data.subarray(0, half), { chunkSize: 1000, encoding: "utf8" });
    const watchers = await Promise.all([1, 2, 3].map(() => ts.clientIn("many")));
    const subs: (string | undefined)[] = [];
    const seen = watchers.map((w, i) => collect(w, () => subs[i], 2));
    for (const [i, w] of watchers.entries()) {
      subs[i] = (await w.call("stream/subscribe", { run: "many", path, after: i === 2 ? 10 : 0 })).subscription;
      seen[i]!.recheck();
    }
    const rest = data.subarray(half);
    let seq = Math.ceil(half / 1000);
    for (let off = 0; off < rest.length; off += 1000) {
      await c.call("stream", { run: "many", path, channel: 1, chunk: rest.subarray(off, off + 1000).toString(), seq: ++seq });
    }
    await c.call("stream/completed", { run: "many", path, exit_code: 0 });
    await Promise.all(seen.map((s) => s.finished));
    expect(seen[0]!.bytes(1).equals(data)).toBe(true);
    expect(seen[1]!.chunks.map((x) => x.seq)).toEqual(seen[0]!.chunks.map((x) => x.seq));
    expect(seen[1]!.bytes(1).equals(data)).toBe(true);
    // The third asked for chunks after seq 10 only.
    expect(seen[2]!.chunks[0]!.seq).toBe(11);
    expect(seen[2]!.bytes(1).equals(data.subarray(10_000))).toBe(true);
  });
});
