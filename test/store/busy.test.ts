// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import { ENTRY } from "../../src/protocol/status.js";
import { RunnerClient } from "../../src/runners/client/runner-client.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { openSqlite } from "../../src/store/sqlite/sqlite-driver.js";
import { eventually, startTestServer } from "../helpers/server.js";

/**
 * Another connection holding SQLite's write lock, as the checkpoint worker's TRUNCATE checkpoint does, at
 * a moment the test picks: the server's connection is told "database is locked" at once (busy timeout 0).
 */
function lockHolder(file: string) {
  const other = openSqlite(file);
  other.pragma("busy_timeout = 0");
  return {
    hold: () => other.exec("BEGIN IMMEDIATE"),
    release: () => other.inTransaction && other.exec("COMMIT"),
    close: () => other.close(),
  };
}

const line = (i: number) => `chunk ${String(i).padStart(4, "0")} ${"x".repeat(200)}\n`;

// SQLite's locks: under SPOOL_TEST_STORE=postgres the servers here would not be on a SQLite file.
const onPostgres = process.env.SPOOL_TEST_STORE === "postgres";
if (onPostgres) console.log("test/store/busy.test.ts: skipped, SPOOL_TEST_STORE=postgres (these tests lock a SQLite file)");

describe.skipIf(onPostgres)("a database momentarily locked by another connection", () => {
  it("appends and other writes wait and go through once the lock is released: none fails, no chunk is lost or doubled", async () => {
    let refusals = 0;
    let onRefused: () => void = () => undefined;
    const ts = await startTestServer({
      localRunner: false,
      store: {
        busyTimeoutMs: 0,
        busyRetry: {
          giveUpMs: 60_000,
          onBusy: () => {
            refusals++;
            onRefused();
          },
        },
      },
    });
    const lock = lockHolder(ts.server.config.dbFile);
    try {
      const c = await ts.clientIn("busy");
      await c.call("run/create", { alias: "r" });
      const { path } = await c.call("proposal/create", { run: "r", tool: "sh", sandbox: "full", command: "output" });
      await c.call("run/resolve", { run: "r", path, decision: "accept", runner: "self" });
      await c.call("stream", { run: "r", path, channel: 1, chunk: line(1), seq: 1 });

      lock.hold();
      const firstRefusal = new Promise<void>((resolve) => (onRefused = resolve));
      // Four appends in flight on stdout, one on stderr, a transaction (run/create) and a write outside one.
      const calls: Promise<any>[] = [2, 3, 4, 5].map((seq) => c.call("stream", { run: "r", path, channel: 1, chunk: line(seq), seq }));
      calls.push(c.call("stream", { run: "r", path, channel: 2, chunk: "err\n", seq: 1 }));
      calls.push(c.call("run/create", { alias: "while-locked" }));
      await firstRefusal;
      // Refused and retried several times while the lock is held, then the lock goes.
      await new Promise<void>((resolve) => {
        onRefused = () => refusals >= 6 && resolve();
      });
      onRefused = () => undefined;
      lock.release();
      const results = await Promise.allSettled(calls);
      expect(results.filter((r) => r.status === "rejected")).toEqual([]);
      expect(results.slice(0, 4).map((r) => (r as PromiseFulfilledResult<any>).value)).toMatchObject([2, 3, 4, 5].map((seq) => ({ seq, duplicate: false })));
      expect(refusals).toBeGreaterThanOrEqual(6);

      // A resend of a stored seq is acknowledged as a duplicate, never stored twice.
      expect(await c.call("stream", { run: "r", path, channel: 1, chunk: line(5), seq: 5 })).toMatchObject({ seq: 5, duplicate: true });
      await c.call("stream/completed", { run: "r", path, exit_code: 0 });
      const [stdout, stderr] = (await c.request("entry/list", { run: "r", pattern: "sh://*" })).entries.sort((a: any, b: any) => a.path.localeCompare(b.path));
      const body = (await c.request("entry/get", { run: "r", path: stdout.path })).body;
      expect(body).toBe([1, 2, 3, 4, 5].map(line).join(""));
      expect(stdout).toMatchObject({ status: ENTRY.done, lines: 5 });
      expect((await c.request("entry/get", { run: "r", path: stderr.path })).body).toBe("err\n");
      expect((await c.call("run/list", {})).runs.map((r: { alias: string }) => r.alias).sort()).toEqual(["r", "while-locked"]);
    } finally {
      lock.release();
      lock.close();
      await ts.stop();
    }
  }, 60_000);

  it("the chunks a producer has in flight on one channel share one commit, in order; its finish waits for them", async () => {
    let onRefused: (waiting: number) => void = () => undefined;
    const ts = await startTestServer({
      localRunner: false,
      store: { busyTimeoutMs: 0, busyRetry: { giveUpMs: 60_000, onBusy: (_attempt, _error, waiting) => onRefused(waiting) } },
    });
    const lock = lockHolder(ts.server.config.dbFile);
    try {
      const c = await ts.clientIn("pipelined");
      await c.call("run/create", { alias: "r" });
      const { path } = await c.call("proposal/create", { run: "r", tool: "sh", sandbox: "full", command: "output" });
      await c.call("run/resolve", { run: "r", path, decision: "accept", runner: "self" });
      await c.call("stream", { run: "r", path, channel: 1, chunk: line(1), seq: 1 });

      // While the database is locked, the group commit waiting on it holds all four chunks sent on the channel.
      lock.hold();
      const allQueued = new Promise<void>((resolve) => (onRefused = (waiting) => waiting === 4 && resolve()));
      const calls = [2, 3, 4, 5].map((seq) => c.call("stream", { run: "r", path, channel: 1, chunk: line(seq), seq }));
      let finished = false;
      const completed = c.call("stream/completed", { run: "r", path, exit_code: 0 }).finally(() => (finished = true));
      await allQueued;
      expect(finished).toBe(false);
      onRefused = () => undefined;
      lock.release();
      expect((await Promise.all(calls)).map((r) => r.seq)).toEqual([2, 3, 4, 5]);
      expect((await completed).status).toBe(ENTRY.done);
      const out = (await c.request("entry/list", { run: "r", pattern: "sh://*_1" })).entries[0];
      expect(out).toMatchObject({ status: ENTRY.done, lines: 5 });
      expect((await c.request("entry/get", { run: "r", path: out.path })).body).toBe([1, 2, 3, 4, 5].map(line).join(""));
    } finally {
      lock.release();
      lock.close();
      await ts.stop();
    }
  }, 60_000);

  it("a runner whose chunk the server refuses with an internal error sends the same seq again: the output is stored once, in order", async (ctx) => {
    let refusals = 0;
    let onRefused: () => void = () => undefined;
    const ts = await startTestServer({
      store: {
        busyTimeoutMs: 0,
        // The store gives up at once: the refusal reaches the runner as INTERNAL_ERROR.
        busyRetry: {
          giveUpMs: 0,
          onBusy: () => {
            refusals++;
            onRefused();
          },
        },
      },
    });
    const lock = lockHolder(ts.server.config.dbFile);
    try {
      const fifo = join(ts.root, "go");
      try {
        execFileSync("mkfifo", [fifo]);
      } catch {
        ctx.skip();
        return;
      }
      const c = await ts.clientIn("busy-runner");
      await c.call("run/create", { alias: "r" });
      // The command prints a line, waits until the test writes to the fifo, then prints 300 more lines.
      const command = `printf 'first\\n'; read x < ${fifo}; i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done`;
      const { path } = await c.call("proposal/create", { run: "r", tool: "sh", command });
      await c.call("run/resolve", { run: "r", path, decision: "accept" });
      const stdoutPath = async () => (await c.request("entry/list", { run: "r", pattern: "sh://*_1" })).entries[0];
      await eventually(async () => (await stdoutPath())?.bytes === 6, 10_000, "the first line");

      lock.hold();
      const refused = new Promise<void>((resolve) => (onRefused = resolve));
      writeFileSync(fifo, "\n");
      await refused;
      onRefused = () => undefined;
      lock.release();

      await eventually(async () => (await stdoutPath())?.status !== ENTRY.streaming, 20_000, "the producer to finish");
      const stdout = await stdoutPath();
      expect(stdout.status).toBe(ENTRY.done);
      const expected = `first\n${Array.from({ length: 300 }, (_, i) => `line ${i}\n`).join("")}`;
      expect((await c.request("entry/get", { run: "r", path: stdout.path })).body).toBe(expected);
      expect(refusals).toBeGreaterThanOrEqual(1);
    } finally {
      lock.release();
      lock.close();
      await ts.stop();
    }
  }, 60_000);
  it("a runner that gives a channel up (its chunk refused past the retries) ends the producer aborted, not completed without that output", async (ctx) => {
    let refusals = 0;
    let lock: ReturnType<typeof lockHolder> | undefined;
    const ts = await startTestServer({
      // The command's runner is the test's own, with the same 8 retries 20 ms apart (not 100 ms doubling to 3.2 s:
      // 12.7 s of waiting that proves nothing more).
      localRunner: false,
      store: {
        busyTimeoutMs: 0,
        // The store gives up at once: each refusal reaches the runner as INTERNAL_ERROR, and the runner tries the
        // chunk 1 + 8 times. At the last refusal the lock goes, so what the runner says next is stored.
        busyRetry: {
          giveUpMs: 0,
          onBusy: () => {
            if (++refusals === 9) lock?.release();
          },
        },
      },
    });
    lock = lockHolder(ts.server.config.dbFile);
    const runner = new RunnerClient({
      connect: () => SpoolClient.connect(ts.server.url, { token: ts.server.token }),
      project: "busy-runner",
      name: "quick-retries",
      backend: new LocalBackend(),
      default: true,
      log: createLogger("silent"),
      chunkRetry: { attempts: 8, delayMs: () => 20 },
    });
    try {
      const fifo = join(ts.root, "go");
      try {
        execFileSync("mkfifo", [fifo]);
      } catch {
        ctx.skip();
        return;
      }
      const c = await ts.clientIn("busy-runner");
      await runner.start();
      await c.call("run/create", { alias: "r" });
      // The command prints a line, waits for the fifo, prints one more and exits at once: long before the runner gives up.
      const command = `printf 'first\\n'; read x < ${fifo}; echo last`;
      const { path } = await c.call("proposal/create", { run: "r", tool: "sh", command });
      await c.call("run/resolve", { run: "r", path, decision: "accept" });
      const stdoutOf = async () => (await c.request("entry/list", { run: "r", pattern: "sh://*_1" })).entries[0];
      await eventually(async () => (await stdoutOf())?.bytes === 6, 10_000, "the first line");

      lock.hold();
      writeFileSync(fifo, "\n");
      await eventually(async () => (await stdoutOf())?.status !== ENTRY.streaming, 40_000, "the producer to end");
      const stdout = await stdoutOf();
      // "last" was never stored: the producer must not read as completed with its output whole.
      expect((await c.request("entry/get", { run: "r", path: stdout.path })).body).toBe("first\n");
      expect(refusals).toBeGreaterThanOrEqual(9);
      expect(stdout.status).not.toBe(ENTRY.done);
    } finally {
      lock.release();
      lock.close();
      await runner.stop();
      await ts.stop();
    }
  }, 60_000);
});
