// What a 20-line read costs the server: one producer streams N MB (64 KiB chunks of ~87-byte lines, 4 in flight)
// into a fresh `spool serve`, then `entry/get` tails (tail: 20) and slices (line/limit: 20, spread over the
// channel) are made one at a time, a tail then a slice. Per kind: wall ms (p50/p90/max) seen by the client, and the server main
// thread's CPU and run-queue wait per read (/proc/PID/task/PID/schedstat, nanoseconds: exact, where
// /proc/PID/stat counts 10 ms ticks), taken around each read and averaged over the kind's reads.
// Usage: npx tsx bench/reads.ts [MB, default 1024] [reads per kind, default 20] [rounds, default 1]
// SPOOL_BENCH_TREES="before=/tmp/old,after=/work/main" runs each round once per tree (A B A B), as bench/compare.ts.
// SPOOL_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the server (the ingest is in the profile too).
// SPOOL_BENCH_SEQUENCE=1 skips the warm-up and prints every read in the order made (which one is slow, and why):
// its start after the end of the ingest (stream/completed answered), wall ms, the main thread's CPU, run-queue wait
// and major/minor page faults during it, the CPU of the server's other threads during it (by thread name: the
// checkpoint worker, libuv's pool, V8's GC helpers), and the event loop's largest delay since the previous read
// (a preload in the server, perf_hooks.monitorEventLoopDelay at 1 ms, read out on SIGUSR2 into a file).
// SPOOL_BENCH_READS_AFTER_MS=N waits N ms after the ingest before the first read (the checkpoint of the ingest's
// WAL done, or not: what is owed to the time since the burst against what is owed to the read's index).
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
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

const sequence = process.env.SPOOL_BENCH_SEQUENCE === "1";

/** The preload that reports the server's event-loop delay: on SIGUSR2 it writes the largest delay (ms) since the last one. */
const eldFile = join(tmpdir(), `spool-bench-eld-${process.pid}`);
const eldPreload = join(tmpdir(), `spool-bench-eld-${process.pid}.cjs`);
if (sequence) {
  writeFileSync(
    eldPreload,
    `const { monitorEventLoopDelay } = require("node:perf_hooks");
const { writeFileSync } = require("node:fs");
const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
process.on("SIGUSR2", () => { writeFileSync(${JSON.stringify(eldFile)}, String(h.max / 1e6)); h.reset(); });
`,
  );
}

/** The event loop's largest delay (ms) since the last call: the preload writes it on SIGUSR2 (answered once the loop turns). */
async function eventLoopDelay(pid: number): Promise<number> {
  rmSync(eldFile, { force: true });
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 1000; i++) {
    try {
      return Number(readFileSync(eldFile, "utf8"));
    } catch {
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  return Number.NaN;
}

/** Per thread of the process (by name, the main thread as "main"): CPU ns so far; the main thread's major and minor faults. */
function threads(pid: number): { cpu: Map<string, number>; majflt: number; minflt: number } {
  const cpu = new Map<string, number>();
  let majflt = 0;
  let minflt = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = tid === String(pid) ? "main" : readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      cpu.set(name, (cpu.get(name) ?? 0) + ns);
      if (tid === String(pid)) {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        minflt = Number(f[7]);
        majflt = Number(f[9]);
      }
    } catch {
      // the thread ended
    }
  }
  return { cpu, majflt, minflt };
}

/**
 * Every read in the order made, with what the server did during it (SPOOL_BENCH_SEQUENCE=1). `end` is when the
 * ingest ended (performance.now()).
 */
async function sequenceOf(client: SpoolClient, pid: number, kinds: [string, (i: number) => object][], end: number): Promise<void> {
  await eventLoopDelay(pid);
  console.log("  #  kind    t_ms  wall_ms  cpu_us  runq_us  majflt minflt  eld_max_ms  other threads' CPU during the read (us)");
  for (let i = 0; i < reads; i++) {
    for (const [name, params] of kinds) {
      const before = threads(pid);
      const [cpu0, runq0] = schedstat(pid);
      const t = performance.now();
      await client.request("entry/get", params(i));
      const wall = performance.now() - t;
      const [cpu1, runq1] = schedstat(pid);
      const after = threads(pid);
      const eld = await eventLoopDelay(pid);
      const others = [...after.cpu]
        .filter(([n]) => n !== "main")
        .map(([n, ns]) => [n, (ns - (before.cpu.get(n) ?? 0)) / 1e3] as const)
        .filter(([, us]) => us >= 50)
        .map(([n, us]) => `${n}=${us.toFixed(0)}`)
        .join(" ");
      console.log(
        [
          String(i).padStart(3),
          name.padEnd(5),
          (t - end).toFixed(1).padStart(7),
          wall.toFixed(2).padStart(8),
          ((cpu1 - cpu0) / 1e3).toFixed(0).padStart(7),
          ((runq1 - runq0) / 1e3).toFixed(0).padStart(8),
          String(after.majflt - before.majflt).padStart(7),
          String(after.minflt - before.minflt).padStart(6),
          eld.toFixed(2).padStart(11),
          ` ${others}`,
        ].join(" "),
      );
    }
  }
}

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

async function round(bin: string | undefined, env: NodeJS.ProcessEnv): Promise<{ tail: Kind; slice: Kind } | undefined> {
  const preload = sequence ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${eldPreload}`.trim() } : {};
  const server = await startServerProcess({ ...(bin ? { SPOOL_BENCH_BIN: bin } : {}), ...preload, ...env });
  try {
    const client = await server.connect();
    await client.initialize("bench", { root: server.root });
    await client.request("run/create", { alias: "s" });
    const { path } = await client.request("proposal/create", { run: "s", tool: "sh", command: `produce ${mb} MB`, sandbox: "full" });
    await client.request("run/resolve", { run: "s", path, decision: "accept", runner: "self" });
    await pump(client, (i) => ({ run: "s", path, channel: 1, chunk: texts[i % texts.length], seq: i + 1 }));
    await client.request("stream/completed", { run: "s", path, exit_code: 0 });
    const end = performance.now();
    await new Promise((r) => setTimeout(r, Number(process.env.SPOOL_BENCH_READS_AFTER_MS ?? 0)));
    const channel = (await client.request("entry/list", { run: "s", pattern: "sh://*_1" })).entries[0];
    if (channel.bytes !== chunks * CHUNK) throw new Error(`stored ${channel.bytes} bytes, expected ${chunks * CHUNK}`);
    const tail = (_i: number) => ({ run: "s", path: channel.path, tail: 20 });
    const slice = (i: number) => ({ run: "s", path: channel.path, line: 1 + Math.floor((channel.lines * (i + 1)) / (reads + 2)), limit: 20 });
    if (sequence) {
      await sequenceOf(
        client,
        server.pid,
        [
          ["tail", tail],
          ["slice", slice],
        ],
        end,
      );
      client.close();
      return undefined;
    }
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
    if (sequence) console.log(`${tree.label}: load ${at}`);
    const figures = await round(tree.bin, tree.env);
    if (!figures) continue;
    const { tail, slice } = figures;
    const [tw, tc] = fmt(tail);
    const [sw, sc] = fmt(slice);
    console.log([tree.label.padEnd(5), at.padEnd(15), tw!.padStart(20), tc!.padStart(16), sw!.padStart(21), sc!.padStart(18)].join("  "));
  }
}
if (sequence) for (const file of [eldPreload, eldFile]) rmSync(file, { force: true });
