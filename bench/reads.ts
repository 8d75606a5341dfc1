// What a 20-line read costs the server: one producer streams N MB (64 KiB chunks of ~87-byte lines, 4 in flight)
// into a fresh `spool serve`, then `entry/get` tails (tail: 20) and slices (line/limit: 20, spread over the
// channel) are made one at a time, a tail then a slice. Per kind: wall ms (p50/p90/max) seen by the client, and the server main
// thread's CPU and run-queue wait per read (/proc/PID/task/PID/schedstat, nanoseconds: exact, where
// /proc/PID/stat counts 10 ms ticks), taken around each read and averaged over the kind's reads.
// Usage: npx tsx bench/reads.ts [MB, default 1024] [reads per kind, default 20] [rounds, default 1]
// SPOOL_BENCH_TREES="before=/tmp/old,after=/work/main" runs each round once per tree (A B A B), as bench/compare.ts.
// SPOOL_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the server (the ingest is in the profile too).
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import type { SpoolClient } from "../src/client/spool-client.js";
import { machine, percentile, startServerProcess } from "./common.js";

const CHUNK = 64 * 1024;
const WINDOW = 4;
const mb = Number(process.argv[2] ?? 1024);
const reads = Number(process.argv[3] ?? 20);
const rounds = Number(process.argv[4] ?? 1);
const chunks = Math.round((mb * 2 ** 20) / CHUNK);

const texts = Array.from({ length: 64 }, (_, i) => {
  const line = `chunk ${String(i).padStart(6, "0")} ${"abcdefghijklmnopqrstuvwxyz".repeat(3)}\n`;
  return `${line.repeat(Math.ceil(CHUNK / line.length)).slice(0, CHUNK - 1)}\n`;
});

/** The main thread's [CPU, run-queue wait] so far, in nanoseconds. */
function schedstat(pid: number): [number, number] {
  const [cpu, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ");
  return [Number(cpu), Number(wait)];
}

async function pump(client: SpoolClient, params: (i: number) => object): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < chunks; i++) {
    const call: Promise<void> = client.request("stream", params(i)).then(() => {
      inFlight.delete(call);
    });
    inFlight.add(call);
    if (inFlight.size >= WINDOW) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

interface Kind {
  wall: number[];
  cpuUs: number;
  runqUs: number;
}

/** Tails and slices in turn, each read's server CPU and run-queue wait taken around it (the server is idle between reads). */
async function measure(client: SpoolClient, pid: number, kinds: ((i: number) => object)[]): Promise<Kind[]> {
  const out = kinds.map((): Kind => ({ wall: [], cpuUs: 0, runqUs: 0 }));
  for (let i = 0; i < reads; i++) {
    for (const [k, params] of kinds.entries()) {
      const [cpu0, runq0] = schedstat(pid);
      const t = performance.now();
      await client.request("entry/get", params(i));
      out[k]!.wall.push(performance.now() - t);
      const [cpu1, runq1] = schedstat(pid);
      out[k]!.cpuUs += (cpu1 - cpu0) / 1e3 / reads;
      out[k]!.runqUs += (runq1 - runq0) / 1e3 / reads;
    }
  }
  for (const kind of out) kind.wall.sort((a, b) => a - b);
  return out;
}

async function round(bin: string | undefined, env: NodeJS.ProcessEnv): Promise<{ tail: Kind; slice: Kind }> {
  const server = await startServerProcess({ ...(bin ? { SPOOL_BENCH_BIN: bin } : {}), ...env });
  try {
    const client = await server.connect();
    await client.initialize("bench", { root: server.home });
    await client.request("run/create", { alias: "s" });
    const { path } = await client.request("proposal/create", { run: "s", tool: "sh", command: `produce ${mb} MB` });
    await client.request("run/resolve", { run: "s", path, decision: "accept", runner: "self" });
    await pump(client, (i) => ({ run: "s", path, channel: 1, chunk: texts[i % texts.length], seq: i + 1 }));
    await client.request("stream/completed", { run: "s", path, exit_code: 0 });
    const channel = (await client.request("entry/list", { run: "s", pattern: "sh://*_1" })).entries[0];
    if (channel.bytes !== chunks * CHUNK) throw new Error(`stored ${channel.bytes} bytes, expected ${chunks * CHUNK}`);
    const tail = (_i: number) => ({ run: "s", path: channel.path, tail: 20 });
    const slice = (i: number) => ({ run: "s", path: channel.path, line: 1 + Math.floor((channel.lines * (i + 1)) / (reads + 2)), limit: 20 });
    // Warm-up: the first reads compile the statements and fault in the index pages.
    for (let i = 0; i < 5; i++) {
      await client.request("entry/get", tail(i));
      await client.request("entry/get", slice(i));
    }
    const [tails, slices] = await measure(client, server.pid, [tail, slice]);
    client.close();
    return { tail: tails!, slice: slices! };
  } finally {
    await server.stop();
  }
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const trees = (process.env.SPOOL_BENCH_TREES ?? "")
  .split(",")
  .filter(Boolean)
  .map((t) => {
    const [label, rest] = t.split(/=(.*)/s) as [string, string];
    const [root, query] = rest.split("?");
    return { label, bin: join(root!, "bin", "spool.js"), env: Object.fromEntries(new URLSearchParams(query ?? "")) as NodeJS.ProcessEnv };
  });
console.log(`machine: ${machine()}; load ${load()}`);
console.log(`${mb} MB channel, ${reads} reads of 20 lines per kind; server main thread CPU and run-queue wait per read`);
console.log("tree   load(1/5/15)     tail_p50/p90/max_ms  tail_cpu/runq_us  slice_p50/p90/max_ms  slice_cpu/runq_us");
const fmt = (k: Kind) => [
  `${[50, 90].map((p) => percentile(k.wall, p).toFixed(2)).join("/")}/${k.wall[k.wall.length - 1]!.toFixed(2)}`,
  `${k.cpuUs.toFixed(0)}/${k.runqUs.toFixed(0)}`,
];
for (let r = 1; r <= rounds; r++) {
  for (const tree of trees.length ? trees : [{ label: String(r), bin: undefined, env: {} }]) {
    const at = load();
    const { tail, slice } = await round(tree.bin, tree.env);
    const [tw, tc] = fmt(tail);
    const [sw, sc] = fmt(slice);
    console.log([tree.label.padEnd(5), at.padEnd(15), tw!.padStart(20), tc!.padStart(16), sw!.padStart(21), sc!.padStart(18)].join("  "));
  }
}
