// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and raw rows
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EMBEDDED_MAX_CHUNK_BYTES } from "../../src/runners/local/embedded.js";
import { ended, startProducer } from "../helpers/live-output.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * How the embedded runner cuts a process's output into chunks: never over the server's limits.maxChunkBytes
 * (nor EMBEDDED_MAX_CHUNK_BYTES), every byte once and in order; output that trickles goes at once, never waiting
 * for a buffer to fill.
 */
const LINE = "spool embedded chunk line\n";
const expectedOutput = (bytes: number) => LINE.repeat(Math.ceil(bytes / LINE.length)).slice(0, bytes);

const servers: TestServer[] = [];
afterEach(async () => {
  for (const ts of servers.splice(0)) await ts.stop();
});

/** The stored chunks of a channel, in seq order. */
async function storedChunks(ts: TestServer, path: string): Promise<{ seq: number; data: Buffer }[]> {
  const db = ts.server.store.db;
  const { id } = await db.selectFrom("entries").select(["id"]).where("path", "=", path).executeTakeFirstOrThrow();
  const rows = await db.selectFrom("chunks").select(["seq", "data"]).where("entry_id", "=", id).orderBy("seq").execute();
  return rows.map((r) => ({ seq: Number(r.seq), data: Buffer.from(r.data) }));
}

describe("the embedded runner's chunks", () => {
  it("never sends a chunk over the server's limits.maxChunkBytes: a lower limit cuts the output smaller, and all of it is stored", async () => {
    const limit = 16 * 1024;
    const ts = await startTestServer({ limits: { maxChunkBytes: limit } });
    servers.push(ts);
    const client = await ts.clientIn("limit");
    const bytes = 600 * 1024;
    const p = await startProducer(client, "l", `yes '${LINE.trimEnd()}' | head -c ${bytes}`, { runner: "local" });
    const { out, log } = await ended(client, "l", p.path, p.stdout);
    expect(log.status).toBe(200);
    expect(out.body).toBe(expectedOutput(bytes));
    const chunks = await storedChunks(ts, p.stdout);
    expect(Math.max(...chunks.map((c) => c.data.length))).toBeLessThanOrEqual(limit);
    expect(Buffer.concat(chunks.map((c) => c.data)).toString()).toBe(expectedOutput(bytes));
  });

  it("under the default limit a chunk is at most one pipe read (EMBEDDED_MAX_CHUNK_BYTES), and the output is whole and in order", async () => {
    const ts = await startTestServer();
    servers.push(ts);
    const client = await ts.clientIn("default");
    const bytes = 1024 * 1024 + 7;
    const p = await startProducer(client, "d", `yes '${LINE.trimEnd()}' | head -c ${bytes}`, { runner: "local" });
    const { out } = await ended(client, "d", p.path, p.stdout);
    expect(out.body).toBe(expectedOutput(bytes));
    const chunks = await storedChunks(ts, p.stdout);
    expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1));
    expect(Math.max(...chunks.map((c) => c.data.length))).toBeLessThanOrEqual(EMBEDDED_MAX_CHUNK_BYTES);
  });

  it("output that trickles is stored as it comes: a line printed before the process waits is there while it waits", async () => {
    const ts = await startTestServer();
    servers.push(ts);
    const client = await ts.clientIn("trickle");
    const p = await startProducer(client, "t", "echo first; while [ ! -e go ]; do sleep 0.01; done; echo second", { runner: "local" });
    // The process is still running (it waits for a file only the test creates): nothing but the line itself
    // could have sent it.
    await p.output.until("first\n");
    const stored = await client.call("entry/get", { run: "t", path: p.stdout });
    expect(stored).toMatchObject({ status: 102, body: "first\n" });
    writeFileSync(join(ts.root, "go"), "");
    const { out } = await ended(client, "t", p.path, p.stdout);
    expect(out.body).toBe("first\nsecond\n");
  });
});
