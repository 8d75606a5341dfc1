// Load: P producers stream concurrently through attached runners (`spool runner
// --backend local` processes) while W watchers follow them and Q clients poll
// entry/get. Prints aggregate MB/s, p50/p99 latency from the producer's write
// to the watchers' stream/data (each line carries its own timestamp), errors,
// lost or duplicated lines, and the server's peak memory (VmHWM).
// With SPOOL_BENCH_POSTGRES_URL set, the store is a fresh PostgreSQL database on that server, and
// SPOOL_BENCH_SERVERS=2 spreads the work over two `spool serve` processes sharing it (one token file):
// runner-0 attaches to the first, runner-1 to the second, watchers and pollers alternate, and the latency is
// also given apart for watchers on the producer's runner's server and on the other one.
// Usage: [SPOOL_BENCH_POSTGRES_URL=postgres://… [SPOOL_BENCH_SERVERS=2]] npx tsx bench/load.ts [producers=200] [watchers=50] [pollers=10] [seconds=20] [lineBytes=512] [linesPerSecond=20]
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import pg from "pg";
import { machine, percentile, startRunnerProcess, startServerProcess } from "./common.js";

const [P, W, Q, SECONDS, LINE_BYTES, RATE] = [200, 50, 10, 20, 512, 20].map((d, i) => Number(process.argv[2 + i] ?? d)) as [
  number,
  number,
  number,
  number,
  number,
  number,
];
const RUNNERS = 2;
// SPOOL_BENCH_SANDBOX=full SPOOL_BENCH_RUNNER_ARGS="--sandbox off": the same load with no sandbox, to tell its share
// (each command's start in a sandbox of its own is most of the tail while the producers start).
const SANDBOX = process.env.SPOOL_BENCH_SANDBOX as "read-only" | "workspace-write" | "full" | undefined;
const RUNNER_ARGS = (process.env.SPOOL_BENCH_RUNNER_ARGS ?? "").split(" ").filter(Boolean);
const LINES = SECONDS * RATE;

// One perl process per producer: no fork per line, a timestamp and a counter on each.
// Each waits START_DELAY seconds first, so every accept and watch is in place before the first line.
const START_DELAY = Math.max(2, Math.ceil(P / 60));
// Producers start (and so finish) spread over two seconds, as independent commands would, rather than in lockstep.
const commandFor = (i: number) =>
  `perl -MTime::HiRes=time,sleep -e '$|=1; sleep(${START_DELAY + (i % 40) * 0.05}); for my $i (1..${LINES}) { printf "%.3f %06d %s\\n", time()*1000, $i, "x" x ${LINE_BYTES - 30}; sleep(${1 / RATE}); }'`;

/** CPU seconds a process (all its threads) or, given `thread`, one of its threads (the main thread: `pid` again) has used. */
const cpuSeconds = (pid: number, thread?: number) => {
  const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
};

/** The kernel's part of cpuSeconds (stime). */
const systemSeconds = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[12]) / 100;
};

const peakMemory = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
};

const admin_ = process.env.SPOOL_BENCH_POSTGRES_URL;
const SERVERS = admin_ ? Number(process.env.SPOOL_BENCH_SERVERS ?? 1) : 1;

/** Drops a database freshDatabase made (each run's is a few hundred MB). */
async function dropDatabase(url: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS ${new URL(database).pathname.slice(1)} WITH (FORCE)`);
  await client.end();
}

async function freshDatabase(url: string): Promise<string> {
  const name = `spool_bench_${randomBytes(4).toString("hex")}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}

const shared: NodeJS.ProcessEnv = { SPOOL_LOCAL_RUNNER: "off" };
if (admin_) {
  shared.SPOOL_DATABASE_URL = await freshDatabase(admin_);
  shared.SPOOL_TOKEN_FILE = join(mkdtempSync(join(tmpdir(), "spool-bench-token-")), "token");
  writeFileSync(shared.SPOOL_TOKEN_FILE, `${randomBytes(24).toString("hex")}\n`, { mode: 0o600 });
}
const servers = await Promise.all(Array.from({ length: SERVERS }, () => startServerProcess(shared)));
const server = servers[0]!;
/** The server runner `i`, watcher `i` or poller `i` connects to. */
const serverOf = (i: number) => servers[i % SERVERS]!;
console.log(`machine: ${machine()}`);
console.log(`store: ${admin_ ? "PostgreSQL" : "SQLite"}, ${SERVERS} server${SERVERS > 1 ? "s" : ""}`);
console.log(`${P} producers (${RATE} lines/s of ${LINE_BYTES} bytes for ${SECONDS} s, through ${RUNNERS} attached runners), ${W} watchers, ${Q} pollers`);
const admin = await server.connect();
await admin.initialize("load", { root: server.root });
const runners = await Promise.all(
  Array.from({ length: RUNNERS }, (_, i) => startRunnerProcess(serverOf(i), "load", `runner-${i}`, ["--backend", "local", ...RUNNER_ARGS])),
);
const errors: string[] = [];
const fail = (where: string) => (e: unknown) => void errors.push(`${where}: ${e instanceof Error ? e.message : String(e)}`);
try {
  await admin.call("run/create", { alias: "load" });
  const paths: string[] = [];
  for (let i = 0; i < P; i++)
    paths.push(
      (await admin.call("proposal/create", { run: "load", tool: "sh", command: `${commandFor(i)} # ${i}`, ...(SANDBOX ? { sandbox: SANDBOX } : {}) })).path,
    );

  // Watchers subscribe before anything runs, so they see every line live.
  const latencies: number[] = [];
  /** [write time, latency] of every line, to tell when in the run the slow ones were written. */
  const timeline: [number, number][] = [];
  /** With two servers: latencies of watchers on the server of the producer's runner, and on the other one. */
  const sameServer: number[] = [];
  const otherServer: number[] = [];
  const seen = new Map<string, number>(); // path → last counter seen
  /** stream/data notifications the watchers got: the chunks stored (a starved runner reads several lines into one). */
  let chunks = 0;
  let disorder = 0;
  const watchers = await Promise.all(Array.from({ length: W }, (_, w) => serverOf(Math.floor(w / 2)).connect()));
  const watches = [];
  for (const [w, client] of watchers.entries()) {
    await client.initialize("load");
    for (let i = w; i < P; i += W) {
      const path = paths[i]!;
      // Accepting opens the channels; the watch starts right after, before the first line (the runner needs longer).
      await admin.call("run/resolve", { run: "load", path, decision: "accept", runner: `runner-${i % RUNNERS}` });
      let partial = "";
      const across = Math.floor(w / 2) % SERVERS !== (i % RUNNERS) % SERVERS;
      watches.push(
        await client.watch({ run: "load", path, channel: 1 }, (chunk) => {
          // To the microsecond, as perl stamps the line (Date.now() would floor to the millisecond: ~0.5 ms short).
          const now = performance.timeOrigin + performance.now();
          chunks++;
          const text = partial + chunk.data.toString();
          const lines = text.split("\n");
          partial = lines.pop()!;
          for (const line of lines) {
            const [stamp, counter] = line.split(" ");
            latencies.push(now - Number(stamp));
            timeline.push([Number(stamp), now - Number(stamp)]);
            (across ? otherServer : sameServer).push(now - Number(stamp));
            const n = Number(counter);
            if (n !== (seen.get(path) ?? 0) + 1) disorder++;
            seen.set(path, n);
          }
        }),
      );
    }
  }
  const started = Date.now();
  // The servers' CPU from the first line (START_DELAY) to the last stream/end: all threads, and the main thread alone
  // (the event loop's busy time: it blocks on nothing, so its CPU over the wall time is its utilisation). Steadier
  // than the latency tail.
  let cpuAt: number[][] = [];
  let runnerCpuAt: number[] = [];
  let runnerSysAt: number[] = [];
  let cpuFrom = 0;
  /** This process's CPU at the same start: the watchers' (and pollers') side of the run, the client library's path. */
  let clientCpuAt = process.cpuUsage();
  const cpuStart = setTimeout(() => {
    clientCpuAt = process.cpuUsage();
    cpuAt = servers.map((s) => [cpuSeconds(s.pid), cpuSeconds(s.pid, s.pid)]);
    runnerCpuAt = runners.map((r) => cpuSeconds(r.pid!));
    runnerSysAt = runners.map((r) => systemSeconds(r.pid!));
    cpuFrom = Date.now();
  }, START_DELAY * 1000);
  // This process's own event-loop delay while it takes the watchers' lines: what it adds to the latencies it measures.
  const clientLoop = monitorEventLoopDelay({ resolution: 1 });
  clientLoop.enable();
  await new Promise((r) => setTimeout(r, 0));
  const pollers = await Promise.all(Array.from({ length: Q }, (_, q) => serverOf(q).connect()));
  let polls = 0;
  let polling = true;
  const pollLoops = pollers.map(async (client) => {
    await client.initialize("load");
    while (polling) {
      const log = paths[Math.floor(Math.random() * P)]!;
      const channel = log.replace(/^log:\/\/turn_(\d+)\/sh\/(.+)$/, "sh://turn_$1/$2_1");
      await client.call("entry/get", { run: "load", path: channel, tail: 20 }).then(() => polls++, fail("poll"));
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  let peak = 0;
  const memory = () => Math.max(...servers.map((s) => peakMemory(s.pid)));
  const sampler = setInterval(() => (peak = Math.max(peak, memory())), 500);
  await Promise.all(watches.map((w) => w.ended));
  clearTimeout(cpuStart);
  const cpu = servers.map((s, i) => [cpuSeconds(s.pid) - (cpuAt[i]?.[0] ?? 0), cpuSeconds(s.pid, s.pid) - (cpuAt[i]?.[1] ?? 0)]);
  const clientCpuUsed = process.cpuUsage(clientCpuAt);
  const clientCpu = (clientCpuUsed.user + clientCpuUsed.system) / 1e6;
  const wall = (Date.now() - (cpuFrom || started)) / 1000;
  const runnerCpu = runners.map((r, i) => cpuSeconds(r.pid!) - (runnerCpuAt[i] ?? 0));
  const runnerSys = runners.map((r, i) => systemSeconds(r.pid!) - (runnerSysAt[i] ?? 0));
  const seconds = (Date.now() - started) / 1000 - START_DELAY - 1;
  polling = false;
  await Promise.all(pollLoops);
  clearInterval(sampler);
  peak = Math.max(peak, memory());

  const { entries } = await admin.call("entry/list", { run: "load", pattern: "sh://*_1", limit: 10_000 });
  const bytes = entries.reduce((sum, e) => sum + e.bytes, 0);
  const notDone = entries.filter((e) => e.status !== 200 || e.lines !== LINES).length;
  const lost = [...seen.values()].filter((n) => n !== LINES).length + (P - seen.size);
  latencies.sort((a, b) => a - b);
  console.log(
    `aggregate: ${(bytes / 2 ** 20 / seconds).toFixed(2)} MB/s stored (${(bytes / 2 ** 20).toFixed(1)} MB in ${seconds.toFixed(1)} s), ${latencies.length} lines watched, ${polls} polls`,
  );
  console.log(
    `write → watcher latency: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms`,
  );
  // The p99 of each second of the run (by write time): a tail made at start-up or at the end shows as one bad second.
  const first = Math.min(...timeline.map(([t]) => t));
  const perSecond = new Map<number, number[]>();
  for (const [t, l] of timeline) {
    const s = Math.floor((t - first) / 1000);
    const set = perSecond.get(s);
    if (set) set.push(l);
    else perSecond.set(s, [l]);
  }
  const seconds_ = [...perSecond.keys()].sort((a, b) => a - b);
  console.log(
    `  p99 per second of writes: ${seconds_
      .map((s) => {
        const set = perSecond.get(s)!.sort((a, b) => a - b);
        return percentile(set, 99).toFixed(0);
      })
      .join(" ")} ms`,
  );
  if (SERVERS > 1) {
    for (const [label, set] of [
      ["same server as the runner", sameServer],
      ["the other server", otherServer],
    ] as const) {
      set.sort((a, b) => a - b);
      console.log(`  watchers on ${label}: ${set.length} lines, p50 ${percentile(set, 50).toFixed(1)} ms, p99 ${percentile(set, 99).toFixed(1)} ms`);
    }
  }
  clientLoop.disable();
  console.log(
    `  bench client's own event-loop delay (one process for all watchers and pollers): p50 ${(clientLoop.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(clientLoop.percentile(99) / 1e6).toFixed(1)} ms, max ${(clientLoop.max / 1e6).toFixed(0)} ms`,
  );
  console.log(`errors: ${errors.length}; producers not complete: ${notDone}; watchers with lost lines: ${lost}; out-of-order or duplicated lines: ${disorder}`);
  if (notDone) {
    // How the incomplete channels ended: status and line count, with how many ended so.
    const ends = new Map<string, number>();
    for (const e of entries.filter((e) => e.status !== 200 || e.lines !== LINES))
      ends.set(`${e.status}/${e.lines}`, (ends.get(`${e.status}/${e.lines}`) ?? 0) + 1);
    console.log(`  not complete (status/lines × n): ${[...ends].map(([k, n]) => `${k} × ${n}`).join(", ")}`);
    // Each one's summary and stderr: what ended it.
    for (const e of entries.filter((e) => e.status !== 200 || e.lines !== LINES).slice(0, 5)) {
      const log = e.path.replace(/^sh:\/\/(turn_\d+)\/(.+)_1$/, "log://$1/sh/$2");
      const summary = (await admin.call("entry/get", { run: "load", path: log })).body;
      const stderr = await admin.call("entry/get", { run: "load", path: e.path.replace(/_1$/, "_2"), tail: 5 }).then(
        (x) => x.body,
        (x: Error) => x.message,
      );
      console.log(`  ${summary}\n    stderr: ${JSON.stringify(stderr)}`);
    }
  }
  console.log(
    `server CPU from the first line to the last end (${wall.toFixed(1)} s): ${cpu.map(([all, main]) => `${all!.toFixed(1)} s (main thread ${main!.toFixed(1)} s, ${((main! / wall) * 100).toFixed(0)} % of the wall time)`).join("; ")}, ${((cpu.reduce((sum, [all]) => sum + all!, 0) / latencies.length) * 1e6).toFixed(0)} µs a line, ${((cpu.reduce((sum, [all]) => sum + all!, 0) / chunks) * 1e6).toFixed(0)} µs a chunk (${chunks} chunks)`,
  );
  console.log(
    `runner CPU from the first line to the last end: ${runnerCpu.map((c, i) => `${c.toFixed(2)} s (kernel ${runnerSys[i]!.toFixed(2)} s)`).join(", ")}, ${((runnerCpu.reduce((sum, c) => sum + c, 0) / (P * LINES)) * 1e6).toFixed(0)} µs a line written`,
  );
  console.log(
    `this process's CPU over the same span (the ${W} watchers' client side, the ${Q} pollers): ${clientCpu.toFixed(1)} s, ${((clientCpu / chunks) * 1e6).toFixed(0)} µs a chunk delivered`,
  );
  console.log(`server peak memory (VmHWM${SERVERS > 1 ? ", the larger of the two" : ""}): ${peak.toFixed(0)} MB`);
  for (const e of errors.slice(0, 5)) console.log(`  ${e}`);
  for (const c of [admin, ...watchers, ...pollers]) c.close();
} finally {
  for (const r of runners) r.kill("SIGTERM");
  await Promise.all(servers.map((s) => s.stop()));
  if (admin_ && shared.SPOOL_DATABASE_URL) await dropDatabase(admin_, shared.SPOOL_DATABASE_URL);
}
