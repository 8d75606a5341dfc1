// What the first reads after a burst wait for (issue 24): one producer streams N MB (64 KiB chunks, 4 in flight)
// into a fresh `spool serve` started with --trace-gc, then 8 tails and 8 slices of 20 lines one at a time, as
// bench/compare.ts makes them. Around each read it samples every server thread's CPU and run-queue time
// (/proc/<pid>/task/<tid>/stat and schedstat) and voluntary context switches, and the client's own run-queue time:
// a read waiting for a lock sleeps (voluntary switches beyond the one epoll wait, wall » CPU + run queue), a read
// waiting for a CPU shows run-queue time; another server thread's CPU during a read (the checkpoint worker, V8's
// helpers) is printed beside it; the server's GCs from 100 ms before the burst's end are listed with their time.
// Usage: [SPOOL_BENCH_TREES="a=/tree,b=/tree?NAME=value"] npx tsx bench/first-read.ts [MB=1024] [rounds=1]
// SPOOL_BENCH_PERF=DIR: `perf record -e cpu-clock -g -k monotonic` on the server from the last 64 chunks of the burst
// to the end of the reads (DIR/<label>-<round>.data), and each read's start and end on the same clock
// (DIR/<label>-<round>.reads.json); bench/perf-reads.py splits the samples by read. Give the server
// --perf-basic-prof (SPOOL_BENCH_NODE_ARGS, or the tree's query) to name its JavaScript frames.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { SpoolClient } from "../src/client/spool-client.js";
import { binLaunch, perfRecorder } from "./common.js";

const MB = Number(process.argv[2] ?? 1024);
const ROUNDS = Number(process.argv[3] ?? 1);
const CHUNK = 64 * 1024;
const chunks = Math.round((MB * 2 ** 20) / CHUNK);
// "label=root" or "label=root?NAME=value&…" (environment variables of that server), as in bench/compare.ts.
const trees = (process.env.SPOOL_BENCH_TREES ?? `this=${new URL("..", import.meta.url).pathname}`).split(",").map((t) => {
  const [label, rest] = t.split(/=(.*)/s) as [string, string];
  const [root, query] = rest.split("?") as [string, string | undefined];
  return { label, root, env: Object.fromEntries(new URLSearchParams(query ?? "")) as Record<string, string> };
});
const texts = Array.from({ length: 64 }, (_, i) => {
  const line = `chunk ${String(i).padStart(6, "0")} ${"abcdefghijklmnopqrstuvwxyz".repeat(3)}\n`;
  return Buffer.from(`${line.repeat(Math.ceil(CHUNK / line.length)).slice(0, CHUNK - 1)}\n`);
});

interface ThreadSample {
  cpu: number;
  runq: number;
  voluntary: number;
}
/** Per thread of a process: CPU ms, ms runnable but not running, voluntary context switches. */
function threads(pid: number): Map<string, ThreadSample> {
  const out = new Map<string, ThreadSample>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ").map(Number);
      const voluntary = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8"))?.[1] ?? 0);
      out.set(tid, { cpu: run! / 1e6, runq: wait! / 1e6, voluntary });
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}
/** A thread's name (bench/thread-names.cjs, preloaded into the server, names the checkpoint worker `ckpt`). */
const comm = (pid: number, tid: string) => {
  try {
    return `(${readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim()})`;
  } catch {
    return "";
  }
};
const PRELOAD = new URL("./thread-names.cjs", import.meta.url).pathname;
const delta = (a: Map<string, ThreadSample>, b: Map<string, ThreadSample>) =>
  [...b].map(([tid, x]) => ({
    tid,
    cpu: x.cpu - (a.get(tid)?.cpu ?? 0),
    runq: x.runq - (a.get(tid)?.runq ?? 0),
    voluntary: x.voluntary - (a.get(tid)?.voluntary ?? 0),
  }));

const PERF = process.env.SPOOL_BENCH_PERF;
const monotonic = () => Number(process.hrtime.bigint()) / 1e9;

async function run(label: string, root: string, env: Record<string, string>, round: number) {
  const bin = join(root, "bin", "spool.js");
  const home = mkdtempSync(join(tmpdir(), "spool-bench-first-read-"));
  const launch = binLaunch(bin, { ...process.env, ...env });
  const gcs: [number, string][] = [];
  const child = spawn(process.execPath, ["--trace-gc", "--require", PRELOAD, ...launch.args, bin, "serve", "--port", "0", "--home", home], {
    env: { ...process.env, ...launch.env, SPOOL_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        const now = performance.now();
        for (const l of d.toString().split("\n")) if (/ ms: (Scavenge|Mark|Minor)/.test(l)) gcs.push([now, l.trim()]);
        out += d.toString();
        const m = /Spool listening on (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    });
    const pid = child.pid!;
    const client = await SpoolClient.connect(url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    await client.initialize("bench", { root: mkdtempSync(join(tmpdir(), "spool-bench-root-")) });
    await client.request("run/create", { alias: "s" });
    const { path } = await client.request("proposal/create", { run: "s", tool: "sh", command: "produce", sandbox: "full" });
    await client.request("run/resolve", { run: "s", path, decision: "accept", runner: "self" });
    const inFlight = new Set<Promise<void>>();
    const wal = join(home, "spool.db-wal");
    let walMax = 0;
    const perfOut = PERF ? join(PERF, `${label}-${round}`) : "";
    const readTimes: { kind: string; i: number; start: number; end: number }[] = [];
    const perf = PERF ? perfRecorder(child.pid!, perfOut, ["-F", "20000", "-k", "monotonic"]) : undefined;
    const streamStart = performance.now();
    for (let i = 0; i < chunks; i++) {
      if (i === Math.max(0, chunks - 64)) perf?.enable();
      if (i % 64 === 0) walMax = Math.max(walMax, existsSync(wal) ? statSync(wal).size : 0);
      const call: Promise<void> = client
        .request("stream", { run: "s", path, channel: 1, chunk: texts[i % 64], seq: i + 1 })
        .then(() => void inFlight.delete(call));
      inFlight.add(call);
      if (inFlight.size >= 4) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const end = performance.now();
    walMax = Math.max(walMax, statSync(wal).size);
    const atEnd = threads(pid);
    await client.request("stream/completed", { run: "s", path, exit_code: 0 });
    const channel = (await client.request("entry/list", { run: "s", pattern: "sh://*_1" })).entries[0];
    const walls: number[] = [];
    let othersCpu = 0;
    const lines = [
      `${label} load ${loadavg()[0]!.toFixed(2)}, ${MB} MB streamed at ${(MB / ((end - streamStart) / 1000)).toFixed(1)} MB/s, the WAL's largest size ${(walMax / 2 ** 20).toFixed(0)} MiB`,
    ];
    const before = delta(atEnd, threads(pid)).filter((x) => x.cpu > 0.05);
    lines.push(
      `  burst end → first read (${(performance.now() - end).toFixed(1)} ms): ${before.map((x) => `${x.tid === String(pid) ? "main" : x.tid + comm(pid, x.tid)} cpu ${x.cpu.toFixed(2)} runq ${x.runq.toFixed(2)}`).join("; ")}`,
    );
    for (let i = 0; i < 8; i++) {
      for (const kind of ["tail", "slice"] as const) {
        const a = threads(pid);
        const me = threads(process.pid);
        const t = performance.now();
        const t0 = monotonic();
        await client.request(
          "entry/get",
          kind === "tail"
            ? { run: "s", path: channel.path, tail: 20 }
            : { run: "s", path: channel.path, line: Math.floor((channel.lines * (i + 1)) / 22), limit: 20 },
        );
        const wall = performance.now() - t;
        readTimes.push({ kind, i, start: t0, end: monotonic() });
        const server = delta(a, threads(pid));
        const mine = delta(me, threads(process.pid)).reduce((sum, x) => sum + x.runq, 0);
        const main = server.find((x) => x.tid === String(pid))!;
        const others = server.filter((x) => x.tid !== String(pid) && x.cpu > 0.05);
        walls.push(wall);
        othersCpu += others.reduce((sum, x) => sum + x.cpu, 0);
        lines.push(
          `  ${kind}${i} +${(t - end).toFixed(0)} ms: wall ${wall.toFixed(2)}  main cpu ${main.cpu.toFixed(2)} runq ${main.runq.toFixed(2)} vcs ${main.voluntary}  client runq ${mine.toFixed(2)}` +
            (others.length ? `  other threads: ${others.map((x) => `${x.tid}${comm(pid, x.tid)} cpu ${x.cpu.toFixed(2)}`).join(", ")}` : ""),
        );
      }
    }
    lines.push(
      `  summary: first read ${walls[0]!.toFixed(2)} ms, max of the first 4 ${Math.max(...walls.slice(0, 4)).toFixed(2)}, max ${Math.max(...walls).toFixed(2)} @${walls.indexOf(Math.max(...walls))}, other server threads' CPU during the reads ${othersCpu.toFixed(1)} ms`,
    );
    if (perf) {
      perf.disable();
      await perf.stop();
      writeFileSync(`${perfOut}.reads.json`, JSON.stringify({ pid: child.pid, burstEnd: monotonic() - (performance.now() - end) / 1000, reads: readTimes }));
    }
    for (const [at, l] of gcs) if (at > end - 100) lines.push(`  GC seen +${(at - end).toFixed(1)} ms: ${l.replace(/^\[[^\]]*\]\s*/, "").slice(0, 100)}`);
    console.log(lines.join("\n"));
    client.close();
  } finally {
    child.kill("SIGTERM");
    await exited;
    rmSync(home, { recursive: true, force: true });
  }
}

for (let round = 0; round < ROUNDS; round++) for (const { label, root, env } of trees) await run(label, root, env, round);
