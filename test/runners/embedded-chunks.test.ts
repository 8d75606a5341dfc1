// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and raw rows
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { EMBEDDED_MAX_CHUNK_BYTES } from "../../src/runners/embedded.js";
import { ended, startProducer } from "../helpers/live-output.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

/**
 * How the embedded runner cuts a process's output into chunks: while its chunks wait for their commit, what the
 * process writes meanwhile goes as one larger chunk (up to the server's limits.maxChunkBytes), in order and whole;
 * output that trickles goes at once, never waiting for a buffer to fill.
 */

// The store is held back with SQLite's write lock: these tests need the SQLite store.
const onPostgres = process.env.SPOOL_TEST_STORE === "postgres";
if (onPostgres) console.log("test/runners/embedded-chunks.test.ts: skipped, SPOOL_TEST_STORE=postgres (these tests lock a SQLite file)");

/** One pipe read of a local process: what a chunk held at most before. */
const PIPE_READ = 64 * 1024;
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

/** A command that waits for the file `name` in the project root, then writes `bytes` of lines and creates `name.done`. */
const writeWhenTold = (name: string, bytes: number) =>
  `while [ ! -e ${name} ]; do sleep 0.01; done; yes '${LINE.trimEnd()}' | head -c ${bytes}; touch ${name}.done`;

describe.skipIf(onPostgres)("the embedded runner's chunks", () => {
  it("output written while the store holds its chunks back goes as chunks larger than a pipe read, every byte once and in order", async () => {
    let refusals = 0;
    const ts = await startTestServer({ store: { busyTimeoutMs: 0, busyRetry: { giveUpMs: 60_000, onBusy: () => void refusals++ } } });
    servers.push(ts);
    const client = await ts.clientIn("gather");
    const bytes = 200 * 1024;
    const p = await startProducer(client, "g", writeWhenTold("go", bytes), { runner: "local" });
    // Another connection takes the write lock: the group commit is refused as busy and retried, so no chunk is
    // acknowledged while the process writes.
    const other = new SQLite(ts.server.config.dbFile);
    other.pragma("busy_timeout = 0");
    try {
      other.exec("BEGIN IMMEDIATE");
      writeFileSync(join(ts.home, "go"), "");
      // The process wrote everything (all but the pipe's last 64 KiB read by the runner) ...
      await eventually(() => existsSync(join(ts.home, "go.done")), 15_000, "the process to write its output");
      // ... and the runner's loop has polled the pipe since: two more refused retries are two later turns.
      const seen = refusals;
      await eventually(() => refusals >= seen + 2, 15_000, "two more busy retries");
    } finally {
      if (other.inTransaction) other.exec("COMMIT");
      other.close();
    }
    const { out } = await ended(client, "g", p.path, p.stdout);
    expect(out.status).toBe(200);
    expect(out.body).toBe(expectedOutput(bytes));
    const chunks = await storedChunks(ts, p.stdout);
    expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1));
    expect(Buffer.concat(chunks.map((c) => c.data)).toString()).toBe(expectedOutput(bytes));
    // What gathered while the first chunks waited went as one chunk (64 KiB at most before).
    expect(Math.max(...chunks.map((c) => c.data.length))).toBeGreaterThan(PIPE_READ);
    expect(Math.max(...chunks.map((c) => c.data.length))).toBeLessThanOrEqual(EMBEDDED_MAX_CHUNK_BYTES);
  });

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
  });

  it("output that trickles is stored as it comes: a line printed before the process waits is there while it waits", async () => {
    const ts = await startTestServer();
    servers.push(ts);
    const client = await ts.clientIn("trickle");
    const p = await startProducer(client, "t", "echo first; while [ ! -e go ]; do sleep 0.01; done; echo second", { runner: "local" });
    // The process is still running (it waits for a file only the test creates): nothing but the line itself
    // could have sent it.
    await p.output.until("first\n");
    const stored = await client.request<any>("entry/get", { run: "t", path: p.stdout });
    expect(stored).toMatchObject({ status: 102, body: "first\n" });
    writeFileSync(join(ts.home, "go"), "");
    const { out } = await ended(client, "t", p.path, p.stdout);
    expect(out.body).toBe("first\nsecond\n");
  });
});
