// The CPU budget of one stream, per thread: what every party spends per GB while one producer streams N MB in
// 64 KiB chunks, 4 in flight (as bench/compare.ts drives its `stream` path), on the bare ws + JSON.parse server
// and on `spool serve`. For the server and for this process (the client: SpoolClient, binary frames where the
// server takes them), each thread's CPU and run-queue wait from /proc/PID/task/TID/schedstat (nanoseconds)
// read before and after the stream; threads are told apart by bench/thread-names.cjs, preloaded into the
// servers (main, ckpt = the checkpoint worker, worker = any other worker_threads Worker, v8-platform = V8's
// helper threads: GC, compiler jobs; node = libuv's pool and Node's other helpers). Also raw better-sqlite3
// 64 KiB inserts in this process (their CPU per GB), the call → answer time (mean, p50, p99) and, from it and
// the window, Little's law: rate ≈ window × 64 KiB / mean answer time.
// Usage: npx tsx bench/budget.ts [MB, default 1024] [rounds, default 2]
// SPOOL_BENCH_TREES="a=/tree,b=/tree?VAR=value" as for compare.ts (each tree's bin/spool.js, A B A B).
// SPOOL_BENCH_PERF=DIR: `perf record -e cpu-clock -g` of each Spool server while it streams (not its start-up or
// stop), into DIR/<label>-<round>.data with the MB it took in DIR/<label>-<round>.json; `python3
// bench/perf-stream.py DIR/*.data` says where each MB's milliseconds go. Give the servers --perf-basic-prof
// through SPOOL_BENCH_EXTRA_NODE_ARGS to name their JavaScript frames.
import "./thread-names.cjs";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { constants, PerformanceObserver, performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { SpoolClient } from "../src/client/spool-client.js";
import { openSqlite } from "../src/store/sqlite/sqlite-driver.js";
import { BARE_SERVER, binLaunch, machine, percentile, perfRecorder, spawnListening, startServerProcess } from "./common.js";

const CHUNK = 64 * 1024;
const WINDOW = 4;
const mb = Number(process.argv[2] ?? 1024);
const rounds = Number(process.argv[3] ?? 2);
const chunks = Math.round((mb * 2 ** 20) / CHUNK);
const PRELOAD = fileURLToPath(new URL("./thread-names.cjs", import.meta.url));
const PERF = process.env.SPOOL_BENCH_PERF;

const texts = Array.from({ length: 64 }, (_, i) => {
  const line = `chunk ${String(i).padStart(6, "0")} ${"abcdefghijklmnopqrstuvwxyz".repeat(3)}\n`;
  return `${line.repeat(Math.ceil(CHUNK / line.length)).slice(0, CHUNK - 1)}\n`;
});
const buffers = texts.map((t) => Buffer.from(t));

/** Per thread name: [run ns, run-queue wait ns], summed over the threads of that name. */
type Threads = Map<string, [number, number]>;

function threads(pid: number | "self"): Map<string, { name: string; run: number; wait: number }> {
  const out = new Map<string, { name: string; run: number; wait: number }>();
  const main = pid === "self" ? String(process.pid) : String(pid);
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ").map(Number) as [number, number];
      const name = tid === main ? "main" : readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      out.set(tid, { name, run, wait });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** What each thread name spent between two readings (threads that started meanwhile count from 0). */
function spent(before: ReturnType<typeof threads>, after: ReturnType<typeof threads>): Threads {
  const out: Threads = new Map();
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { run: 0, wait: 0 };
    const sum = out.get(a.name) ?? [0, 0];
    sum[0] += a.run - b.run;
    sum[1] += a.wait - b.wait;
    out.set(a.name, sum);
  }
  return out;
}

/** The event loop's [idle, active] ms since its start, from the preload (SIGUSR2 → SPOOL_BENCH_ELU_FILE). */
async function elu(pid: number, file: string): Promise<[number, number]> {
  const read = () => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return "";
    }
  };
  const before = read();
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 500; i++) {
    const now = read();
    if (now !== before && now.endsWith("\n")) {
      const [, idle, active] = now.trim().split(" ").map(Number) as [number, number, number];
      return [idle, active];
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  return [Number.NaN, Number.NaN];
}

interface Run {
  mbps: number;
  /** The server's and the client's event loop: idle and active seconds per GB. */
  serverLoop: [number, number];
  clientLoop: [number, number];
  /** The client's garbage collections during the stream. */
  gc: string;
  server: Threads;
  client: Threads;
  /** call → answer, ms */
  mean: number;
  p50: number;
  p99: number;
}

async function pump(client: SpoolClient, params: (i: number) => object): Promise<{ seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  const start = performance.now();
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < chunks; i++) {
    const t = performance.now();
    const call: Promise<void> = client.request("stream", params(i)).then(() => {
      latencies.push(performance.now() - t);
      inFlight.delete(call);
    });
    inFlight.add(call);
    if (inFlight.size >= WINDOW) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return { seconds: (performance.now() - start) / 1000, latencies };
}

/** The client's garbage collections while it streams: count and pause ms per kind (minor, major). */
const gcs = { minor: [0, 0], major: [0, 0] };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR ? gcs.major : gcs.minor;
    kind[0]!++;
    kind[1]! += e.duration;
  }
}).observe({ entryTypes: ["gc"] });

async function measured(pid: number, eluFile: string, go: () => Promise<{ seconds: number; latencies: number[] }>): Promise<Run> {
  for (const k of [gcs.minor, gcs.major]) k.fill(0);
  const e0 = await elu(pid, eluFile);
  const l0 = performance.eventLoopUtilization();
  const s0 = threads(pid);
  const c0 = threads("self");
  const { seconds, latencies } = await go();
  const server = spent(s0, threads(pid));
  const client = spent(c0, threads("self"));
  const l1 = performance.eventLoopUtilization(l0);
  const e1 = await elu(pid, eluFile);
  const perGb = (ms: number) => (ms / 1000) * (1024 / mb);
  const serverLoop: [number, number] = [perGb(e1[0] - e0[0]), perGb(e1[1] - e0[1])];
  const clientLoop: [number, number] = [perGb(l1.idle), perGb(l1.active)];
  const gc = `gc minor ${gcs.minor[0]} (${gcs.minor[1]!.toFixed(0)} ms), major ${gcs.major[0]} (${gcs.major[1]!.toFixed(0)} ms)`;
  latencies.sort((a, b) => a - b);
  const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length;
  return { mbps: mb / seconds, serverLoop, clientLoop, gc, server, client, mean, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function bare(): Promise<Run> {
  const ws = createRequire(import.meta.url).resolve("ws");
  const eluFile = join(tmpdir(), `spool-bench-elu-${process.pid}-bare`);
  const { child, port } = await spawnListening(["--require", PRELOAD, "-e", BARE_SERVER, ws], { ...process.env, SPOOL_BENCH_ELU_FILE: eluFile });
  try {
    const client = await SpoolClient.connect(`ws://127.0.0.1:${port}/`, { token: "none" });
    const run = await measured(child.pid!, eluFile, () =>
      pump(client, (i) => ({ run: "r", path: "log://turn_1/sh/x", channel: 1, chunk: texts[i % texts.length], seq: i + 1 })),
    );
    client.close();
    return run;
  } finally {
    child.kill("SIGKILL");
    rmSync(eluFile, { force: true });
  }
}

async function spool(bin: string, env: NodeJS.ProcessEnv, label: string, round: number): Promise<Run & { binary: boolean }> {
  const launch = binLaunch(bin, env);
  const eluFile = join(tmpdir(), `spool-bench-elu-${process.pid}-spool`);
  const server = await startServerProcess({
    SPOOL_BENCH_ELU_FILE: eluFile,
    SPOOL_BENCH_BIN: bin,
    // SPOOL_BENCH_EXTRA_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p") is added to the server's node flags.
    SPOOL_BENCH_NODE_ARGS: [...launch.args, "--require", PRELOAD, process.env.SPOOL_BENCH_EXTRA_NODE_ARGS ?? ""].join(" "),
    ...launch.env,
    ...env,
  });
  try {
    const client = await server.connect();
    await client.initialize("bench", { root: server.root });
    await client.request("run/create", { alias: "s" });
    const { path } = await client.request("proposal/create", { run: "s", tool: "sh", command: `produce ${mb} MB`, sandbox: "full" });
    await client.request("run/resolve", { run: "s", path, decision: "accept", runner: "self" });
    const binary = client.bytes;
    const out = PERF ? join(PERF, `${label}-${round}`) : "";
    const perf = PERF ? perfRecorder(server.pid, out, ["-F", "2000"]) : undefined;
    const run = await measured(server.pid, eluFile, async () => {
      perf?.enable();
      try {
        return await pump(client, (i) => ({ run: "s", path, channel: 1, chunk: (binary ? buffers : texts)[i % texts.length], seq: i + 1 }));
      } finally {
        perf?.disable();
      }
    });
    if (perf) {
      await perf.stop();
      writeFileSync(`${out}.json`, JSON.stringify({ mb, seconds: mb / run.mbps, pid: server.pid }));
    }
    client.close();
    return { ...run, binary };
  } finally {
    await server.stop();
    rmSync(eluFile, { force: true });
  }
}

/**
 * Raw better-sqlite3, one 64 KiB insert and a counter update per transaction (compare.ts's `raw`): CPU s/GB.
 * With `checkpoint` false, SQLite's own checkpoints are off (`wal_autocheckpoint = 0`, as Spool's writer runs:
 * its checkpoint worker copies the WAL) and `ckpt` is what one checkpoint of the whole WAL costs afterwards.
 */
function raw(checkpoint: boolean): { mbps: number; cpu: number; ckpt: number } {
  const dir = mkdtempSync(join(tmpdir(), "spool-bench-raw-"));
  try {
    const db = openSqlite(join(dir, "raw.db"));
    db.pragma("page_size = 16384");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    if (!checkpoint) db.pragma("wal_autocheckpoint = 0");
    db.exec(
      "CREATE TABLE chunks (entry_id INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (entry_id, seq)); CREATE TABLE entries (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL, last_seq INTEGER NOT NULL); INSERT INTO entries VALUES (1, 0, 0)",
    );
    const insert = db.prepare("INSERT INTO chunks (entry_id, seq, data) VALUES (1, ?, ?)");
    const update = db.prepare("UPDATE entries SET bytes = bytes + ?, last_seq = ? WHERE id = 1");
    const append = db.transaction((seq: number, data: Buffer) => {
      insert.run(seq, data);
      update.run(data.length, seq);
    });
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < chunks; i++) append.immediate(i + 1, buffers[i % buffers.length]!);
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu0);
    const cpu1 = process.cpuUsage();
    if (!checkpoint) db.pragma("wal_checkpoint(TRUNCATE)");
    const ckpt = process.cpuUsage(cpu1);
    db.close();
    const perGb = (u: NodeJS.CpuUsage) => ((u.user + u.system) / 1e6) * (1024 / mb);
    return { mbps: mb / seconds, cpu: perGb(used), ckpt: perGb(ckpt) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ORDER = ["main", "ckpt", "worker", "v8-platform", "node"];
/** "name cpu/wait" per thread name, s per GB, and the total CPU. */
function row(t: Threads): string {
  const rank = (n: string) => (ORDER.includes(n) ? ORDER.indexOf(n) : ORDER.length);
  const names = [...t.keys()].sort((a, b) => rank(a) - rank(b));
  let total = 0;
  const parts: string[] = [];
  for (const n of names) {
    const [run, wait] = t.get(n)!;
    total += run;
    if (run / 1e9 < 0.005 * (mb / 1024)) continue;
    parts.push(`${n} ${(((run / 1e9) * 1024) / mb).toFixed(2)}/${(((wait / 1e9) * 1024) / mb).toFixed(2)}`);
  }
  return `total ${(((total / 1e9) * 1024) / mb).toFixed(2)} = ${parts.join(", ")}`;
}

const trees = (process.env.SPOOL_BENCH_TREES ?? `head=${fileURLToPath(new URL("..", import.meta.url))}`)
  .split(",")
  .filter(Boolean)
  .map((t) => {
    const [label, rest] = t.split(/=(.*)/s) as [string, string];
    const [root, query] = rest.split("?");
    return { label, bin: join(root!, "bin", "spool.js"), env: Object.fromEntries(new URLSearchParams(query ?? "")) as NodeJS.ProcessEnv };
  });

console.log(`# ${machine()}; ${mb} MB per stream, 64 KiB chunks, ${WINDOW} in flight; CPU/run-queue wait in s per GB per thread`);
const load = () => loadavg()[0]!.toFixed(2);
for (let round = 1; round <= rounds; round++) {
  const print = (label: string, r: Run, extra = "") => {
    const little = (WINDOW * CHUNK) / 2 ** 20 / (r.mean / 1000);
    console.log(
      `${label.padEnd(8)} load ${load()}  ${r.mbps.toFixed(1)} MB/s${extra}  answer mean/p50/p99 ${r.mean.toFixed(2)}/${r.p50.toFixed(2)}/${r.p99.toFixed(2)} ms (window/mean ${little.toFixed(0)} MB/s)`,
    );
    const loop = (l: [number, number]) => `loop idle/active ${l[0].toFixed(2)}/${l[1].toFixed(2)}`;
    console.log(`         server: ${loop(r.serverLoop)}; ${row(r.server)}`);
    console.log(`         client: ${loop(r.clientLoop)}; ${row(r.client)}; ${r.gc}`);
  };
  const b = await bare();
  print("bare", b);
  for (const tree of trees) {
    const s = await spool(tree.bin, tree.env, tree.label, round);
    print(tree.label, s, ` (${s.binary ? "bin" : "json"}, ratio ${(s.mbps / b.mbps).toFixed(2)})`);
  }
  const r = raw(true);
  console.log(`raw      load ${load()}  ${r.mbps.toFixed(1)} MB/s  cpu ${r.cpu.toFixed(2)} s/GB (SQLite's own checkpoints)`);
  const n = raw(false);
  console.log(
    `raw-nock load ${load()}  ${n.mbps.toFixed(1)} MB/s  cpu ${n.cpu.toFixed(2)} s/GB without checkpoints, then one checkpoint of the WAL ${n.ckpt.toFixed(2)} s/GB`,
  );
}
