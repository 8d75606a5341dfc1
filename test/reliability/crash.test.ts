import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { freePort, type ServeProcess, spawnRunner, spawnServe } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";

const line = (k: number, seq: number) => `producer-${k} chunk ${seq}\n`;

describe("crash safety", () => {
  it("SIGKILL while producers stream: acknowledged chunks are stored once and in order, runners resume, silent producers end 499 interrupted, proposals stay pending", async () => {
    const home = tempDir();
    const port = await freePort();
    const args = ["--port", String(port), "--home", home, "--no-local-runner"];
    // A runner that has lost its server stops its commands 5 s before the server's grace would end (issue 54): the
    // grace is long enough for the restart to come first, so the attached runner's command survives it.
    const env = { SPOOL_RUNNER_GRACE_MS: "12000" };
    let server: ServeProcess = await spawnServe(args, env);
    const token = readFileSync(join(home, "token"), "utf8").trim();
    const admin = await SpoolClient.connect(server.url, { token });
    await admin.initialize("crash", { root: tempDir("spool-root-") });
    await admin.call("run/create", { alias: "crash" });
    const pending = await admin.call("proposal/create", { run: "crash", tool: "sh", command: "wait for me" });

    // An attached runner executing a real command through the crash.
    const runner = await spawnRunner([
      "--server",
      server.url,
      "--token-file",
      join(home, "token"),
      "--project",
      "crash",
      "--name",
      "survivor",
      "--backend",
      "local",
    ]);
    const slow = await admin.call("proposal/create", { run: "crash", tool: "sh", command: "for i in $(seq 1 60); do echo line $i; sleep 0.05; done" });
    const slowChannels = (await admin.call("run/resolve", { run: "crash", path: slow.path, decision: "accept", runner: "survivor" })).channels;

    // Four producers streaming by hand as fast as they can, four chunks in flight each.
    const producers = await Promise.all(
      [0, 1, 2, 3].map(async (k) => {
        const client = await SpoolClient.connect(server.url, { token });
        await client.initialize("crash");
        const { path } = await client.call("proposal/create", { run: "crash", tool: "sh", sandbox: "full", command: `producer ${k}` });
        const { channels, resumeToken } = await client.call("run/resolve", { run: "crash", path, decision: "accept", runner: "self" });
        return { k, client, path, token: resumeToken!, channel: channels[0]!.path as string, acked: 0, sent: 0 };
      }),
    );
    const pumps = producers.map(async (p) => {
      const inFlight = new Set<Promise<void>>();
      try {
        for (let seq = 1; ; seq++) {
          const call: Promise<void> = p.client.call("stream", { run: "crash", path: p.path, channel: 1, chunk: line(p.k, seq), seq }).then((r) => {
            p.acked = Math.max(p.acked, r.seq);
            inFlight.delete(call);
          });
          call.catch(() => undefined); // the ones in flight when the server dies are simply not acknowledged
          p.sent = seq;
          inFlight.add(call);
          if (inFlight.size >= 4) await Promise.race(inFlight);
        }
      } catch {
        // The server died under us.
      }
    });
    await eventually(() => producers.every((p) => p.acked > 50), 10_000, "some acknowledged chunks");
    await server.stop("SIGKILL");
    await Promise.all(pumps);
    const acked = producers.map((p) => p.acked);

    // The restarted server's grace, from its start-up, is shorter: the runner (told 12 s at attach) tries to reconnect
    // at most 3 s apart (a quarter of it) and is back within that of the restart; the silent producers end after 6 s.
    server = await spawnServe(args, { SPOOL_RUNNER_GRACE_MS: "6000" });
    try {
      const after = await SpoolClient.connect(server.url, { token });
      await after.initialize("crash");
      // Producer 0 claims its producer back with its resume token and goes on where the server left off, first thing:
      // the grace runs from start-up, so nothing comes before it but the claim. The others stay silent.
      const p0 = producers[0]!;
      const claim = await after.call("stream/claim", { run: "crash", path: p0.path, token: p0.token });
      const storedSeq = claim.channels[0]!.lastSeq;
      await after.call("stream", { run: "crash", path: p0.path, channel: 1, chunk: line(0, storedSeq + 1), seq: storedSeq + 1 });
      await after.call("stream/completed", { run: "crash", path: p0.path, exit_code: 0 });
      // Every acknowledged chunk is there exactly once, in order (a chunk stored but not yet acknowledged may follow).
      for (const p of producers) {
        const stored = (await after.call("entry/get", { run: "crash", path: p.channel })).body;
        const lines = stored.split("\n").filter(Boolean);
        const resumed = p.k === 0 ? 1 : 0;
        expect(lines.length - resumed).toBeGreaterThanOrEqual(acked[p.k]!);
        expect(lines.length - resumed).toBeLessThanOrEqual(p.sent);
        expect(stored).toBe(Array.from({ length: lines.length }, (_, i) => line(p.k, i + 1)).join(""));
      }
      expect(storedSeq).toBeGreaterThanOrEqual(acked[0]!);

      // The runner reconnects by itself and finishes its command: every line once, in order.
      await eventually(
        async () => (await after.call("entry/get", { run: "crash", path: slowChannels[0]!.path, tail: 1 })).status !== ENTRY.streaming,
        20_000,
        "the runner's command to finish",
      );
      const slowOut = await after.call("entry/get", { run: "crash", path: slowChannels[0]!.path });
      expect(slowOut.status).toBe(ENTRY.done);
      expect(slowOut.body).toBe(Array.from({ length: 60 }, (_, i) => `line ${i + 1}\n`).join(""));

      // The silent ones end 499 "interrupted" after the grace.
      for (const p of producers.slice(1)) {
        await eventually(
          async () => (await after.call("entry/get", { run: "crash", path: p.channel, tail: 1 })).status === ENTRY.cancelled,
          20_000,
          `producer ${p.k} to be reaped`,
        );
        expect((await after.call("entry/get", { run: "crash", path: p.channel, tail: 1 })).attributes.reason).toBe("interrupted");
      }
      expect((await after.call("entry/get", { run: "crash", path: p0.channel, tail: 1 })).status).toBe(ENTRY.done);
      expect((await after.call("entry/get", { run: "crash", path: pending.path })).status).toBe(ENTRY.proposed);
      after.close();
    } finally {
      await runner.stop();
      await server.stop();
    }
  }, 90_000);
});
