// The load bench's server work per line without its noise: no perl, no runner processes, no pollers. Two clients
// each produce 100 channels themselves (runner "self") and send one-line chunks of 512 bytes as binary frames, round
// robin, at RATE chunks a second in all (every chunk its own frame, as a runner that keeps up sends them); W watcher
// clients follow channel 1 of every producer (each producer watched once). Prints the server's CPU per chunk from
// the first chunk sent to the last stream/data received (all threads, and the main thread alone). A chunk is always
// one line here (the load bench's runners merge lines when they fall behind, so its chunks per line vary with the
// machine's load), so trees compare chunk for chunk. Each producing client keeps at most WINDOW chunks unacknowledged.
// SPOOL_BENCH_TREES="before=/tmp/old,after=/work/main" runs each round once per tree (A B A B), each its bin/spool.js.
// Usage: npx tsx bench/line-cost.ts [seconds=8] [rate=4000] [rounds=2] [watchers=50]
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { machine, startServerProcess } from "./common.js";

const [SECONDS, RATE, ROUNDS, W] = [8, 4000, 2, 50].map((d, i) => Number(process.argv[2 + i] ?? d)) as [number, number, number, number];
const PRODUCERS = 2;
const WINDOW = 48;
const CHANNELS = 200;
const here = fileURLToPath(new URL("..", import.meta.url));
const trees = (process.env.SPOOL_BENCH_TREES ?? `this=${here}`).split(",").map((t) => t.split("=") as [string, string]);

/** CPU seconds of a process (all threads) or of one of its threads. */
const cpuSeconds = (pid: number, thread?: number) => {
  const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

const line = (i: number) => Buffer.from(`${String(i).padStart(12, "0")} ${"x".repeat(512 - 14)}\n`);

async function round(name: string, tree: string): Promise<void> {
  const server = await startServerProcess({ SPOOL_BENCH_BIN: `${tree}/bin/spool.js`, SPOOL_LOCAL_RUNNER: "off" });
  try {
    const producers = await Promise.all(Array.from({ length: PRODUCERS }, () => server.connect()));
    await producers[0]!.initialize("cost", { root: server.root });
    for (const p of producers.slice(1)) await p.initialize("cost");
    await producers[0]!.request("run/create", { alias: "cost" });
    const channels: { client: (typeof producers)[number]; path: string; seq: number }[] = [];
    for (let i = 0; i < CHANNELS; i++) {
      const client = producers[i % PRODUCERS]!;
      const { path } = await client.request("proposal/create", { run: "cost", tool: "sh", command: `produce ${i}`, sandbox: "full" });
      await client.request("run/resolve", { run: "cost", path, decision: "accept", runner: "self" });
      channels.push({ client, path, seq: 0 });
    }
    const watchers = await Promise.all(Array.from({ length: W }, () => server.connect()));
    let received = 0;
    for (const [w, client] of watchers.entries()) {
      await client.initialize("cost");
      for (let i = w; i < CHANNELS; i += W) await client.watch({ run: "cost", path: channels[i]!.path, channel: 1 }, () => void received++);
    }
    const total = RATE * SECONDS;
    const cpuAt = [cpuSeconds(server.pid), cpuSeconds(server.pid, server.pid)];
    const started = performance.now();
    let sent = 0;
    let acked = 0;
    let failed = 0;
    let firstError = "";
    // Each producing client keeps at most WINDOW chunks unacknowledged (the server's maxUnackedChunks is a cap).
    const inFlight = new Map(producers.map((p) => [p, 0]));
    // Every millisecond (timers allowing), the chunks due by then, round robin over the channels: groups of a few chunks.
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * RATE));
        for (; sent < due; sent++) {
          const channel = channels[sent % CHANNELS]!;
          if (inFlight.get(channel.client)! >= WINDOW) break;
          inFlight.set(channel.client, inFlight.get(channel.client)! + 1);
          channel.seq++;
          channel.client.request("stream", { run: "cost", path: channel.path, channel: 1, chunk: line(sent), seq: channel.seq }).then(
            () => {
              acked++;
              inFlight.set(channel.client, inFlight.get(channel.client)! - 1);
            },
            (error: unknown) => {
              failed++;
              firstError ||= String(error);
              inFlight.set(channel.client, inFlight.get(channel.client)! - 1);
            },
          );
        }
        if (sent === total) {
          clearInterval(tick);
          resolve();
        }
      }, 1);
    });
    while (received < acked || acked + failed < total) await new Promise((r) => setTimeout(r, 5));
    const wall = (performance.now() - started) / 1000;
    const [all, main] = [cpuSeconds(server.pid) - cpuAt[0]!, cpuSeconds(server.pid, server.pid) - cpuAt[1]!];
    console.log(
      `${name.padEnd(8)} load ${loadavg()[0]!.toFixed(2).padStart(5)}  ${total} chunks in ${wall.toFixed(1)} s  server ${((all / total) * 1e6).toFixed(1)} µs/chunk (main thread ${((main / total) * 1e6).toFixed(1)}, ${((main / wall) * 100).toFixed(0)} % of the wall)${failed ? `  ${failed} FAILED (${firstError})` : ""}`,
    );
    for (const c of [...producers, ...watchers]) c.close();
  } finally {
    await server.stop();
  }
}

console.log(`machine: ${machine()}`);
console.log(`${CHANNELS} channels over ${PRODUCERS} producing clients, ${W} watchers, ${RATE} one-line chunks of 512 bytes a second for ${SECONDS} s`);
for (let r = 0; r < ROUNDS; r++) for (const [name, tree] of trees) await round(name, tree);
