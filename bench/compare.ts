// Spool's hot paths against the limits under them, measured in the same run so that the ratios mean something
// on a shared machine: a bare `ws` server that only JSON.parses each message and answers (the transport's limit)
// against one `stream` producer into `spool serve` (64 KiB chunks, 4 in flight); raw better-sqlite3 64 KiB
// inserts (one transaction each, Spool's pragmas) against the embedded runner storing a local process's output;
// then tail and slice reads of 20 lines on the streamed channel, the server's CPU time against the wall time
// while it ingested, and its peak RSS. Each round runs every path once, in turn; the load average is printed
// with every round. The two streams' rates are also given over their last three quarters (`steady`): each server is
// a fresh process, and a fresh `spool serve` takes its first ~128 MB at about half its later rate (V8 compiling the
// stream path on its helper threads, its main thread on code not yet optimized, its first WAL; bench/history/
// README.md, 2026-12-01): rounds of 256 MB, the default until then, were mostly that.
// Usage: npx tsx bench/compare.ts [MB per path, default 1024] [rounds, default 2]
// SPOOL_BENCH_TREES="a=/tmp/old,b=/work/main" runs each round once per tree (A B A B: the same client, each
// tree's bin/spool.js as the server; "label=root?NAME=value&…" also sets environment variables of that server);
// SPOOL_BENCH_PATHS=stream,embedded,start picks the paths (start: 20 short `sh` commands one after another on
// the embedded runner, accept → every channel ended, in ms).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SpoolClient } from "../src/client/spool-client.js";
import { openSqlite } from "../src/store/sqlite/sqlite-driver.js";
import { BARE_SERVER, machine, percentile, spawnListening, startServerProcess } from "./common.js";

const CHUNK = 64 * 1024;
const WINDOW = 4;
const mb = Number(process.argv[2] ?? 1024);
const rounds = Number(process.argv[3] ?? 2);
const chunks = Math.round((mb * 2 ** 20) / CHUNK);

/** Distinct, printable, newline-terminated 64 KiB chunks, made once and used in turn (the client's cost stays low). */
const texts = Array.from({ length: 64 }, (_, i) => {
  const line = `chunk ${String(i).padStart(6, "0")} ${"abcdefghijklmnopqrstuvwxyz".repeat(3)}\n`;
  return `${line.repeat(Math.ceil(CHUNK / line.length)).slice(0, CHUNK - 1)}\n`;
});
/** The same chunks as bytes: what a runner reads from a process and sends as binary frames when the server takes them. */
const buffers = texts.map((t) => Buffer.from(t));

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

/**
 * Sends `chunks` calls with up to WINDOW unanswered; the seconds it took, and the MB/s of its last three quarters
 * (from the answer to the first quarter's last call: the receiving process's start-up and JIT warm-up left out).
 */
async function pump(client: SpoolClient, params: (i: number) => object): Promise<{ seconds: number; steady: number }> {
  const start = performance.now();
  const quarter = Math.floor(chunks / 4);
  let warm = start;
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < chunks; i++) {
    const call: Promise<void> = client.request("stream", params(i)).then(() => {
      inFlight.delete(call);
      if (i === quarter - 1) warm = performance.now();
    });
    inFlight.add(call);
    if (inFlight.size >= WINDOW) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const end = performance.now();
  return { seconds: (end - start) / 1000, steady: ((chunks - quarter) * CHUNK) / 2 ** 20 / ((end - warm) / 1000) };
}

/** MB/s and the server's CPU seconds per GB. */
interface Rate {
  mbps: number;
  cpuPerGb: number;
  /** MB/s over the last three quarters (pump's `steady`); NaN where not measured. */
  steady?: number;
}

async function bareEcho(): Promise<Rate> {
  const ws = createRequire(import.meta.url).resolve("ws");
  const { child, port } = await spawnListening(["-e", BARE_SERVER, ws]);
  try {
    const client = await SpoolClient.connect(`ws://127.0.0.1:${port}/`, { token: "none" });
    const cpu0 = cpuSeconds(child.pid!);
    const { seconds, steady } = await pump(client, (i) => ({ run: "r", path: "log://turn_1/sh/x", channel: 1, chunk: texts[i % texts.length], seq: i + 1 }));
    const cpu = cpuSeconds(child.pid!) - cpu0;
    client.close();
    return { mbps: mb / seconds, cpuPerGb: (cpu * 1024) / mb, steady };
  } finally {
    child.kill("SIGKILL");
  }
}

/** The store's limit: raw better-sqlite3, one 64 KiB insert and a counter update per transaction, Spool's pragmas. */
function rawSqlite(): Rate {
  const dir = mkdtempSync(join(tmpdir(), "spool-bench-raw-"));
  try {
    const db = openSqlite(join(dir, "raw.db"));
    db.pragma("page_size = 16384");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec(
      "CREATE TABLE chunks (entry_id INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (entry_id, seq)); CREATE TABLE entries (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL, last_seq INTEGER NOT NULL); INSERT INTO entries VALUES (1, 0, 0)",
    );
    const insert = db.prepare("INSERT INTO chunks (entry_id, seq, data) VALUES (1, ?, ?)");
    const update = db.prepare("UPDATE entries SET bytes = bytes + ?, last_seq = ? WHERE id = 1");
    const append = db.transaction((seq: number, data: Buffer) => {
      insert.run(seq, data);
      update.run(data.length, seq);
    });
    const buffers = texts.map((t) => Buffer.from(t));
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < chunks; i++) append.immediate(i + 1, buffers[i % buffers.length]!);
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu0);
    db.close();
    return { mbps: mb / seconds, cpuPerGb: ((used.user + used.system) / 1e6) * (1024 / mb) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Seconds the process's main thread (the event loop) spent runnable but waiting for a CPU
 * (/proc/<pid>/task/<pid>/schedstat, field 2): on a shared machine, the part of wall − CPU that is other
 * processes' doing, not the server waiting on something.
 */
function runQueueSeconds(pid: number): number {
  return schedstat(pid)[1] / 1e9;
}

/** The main thread's nanoseconds on a CPU and runnable waiting for one (/proc/<pid>/task/<pid>/schedstat). */
function schedstat(pid: number): [number, number] {
  const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ");
  return [Number(run), Number(wait)];
}

/** The process's peak resident memory (VmHWM) or its current one (VmRSS), in MB. */
function rssMb(pid: number, field: "VmHWM" | "VmRSS"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

interface SpoolFigures {
  mbps: number;
  /** MB/s over the last three quarters of the stream. */
  steady: number;
  cpu: number;
  /** Of the wall time, how long the server was runnable but not running (other processes had the CPUs). */
  runq: number;
  wall: number;
  rss: number;
  /** RSS before the stream: what the server holds once started (modules, the TypeScript loader). */
  rssStart: number;
  /** Wall ms of each read, in the order made (the first right after the ingest). */
  tail: number[];
  slice: number[];
  /**
   * The server's event loop during each read, in ms: on a CPU, and runnable but waiting for one (schedstat), so a
   * slow read says whether the server worked or waited for a CPU other threads or processes had.
   */
  tailServer: [number, number][];
  sliceServer: [number, number][];
  /** The chunks went as binary frames (else JSON text). */
  binary: boolean;
}

/**
 * One producer streaming into a fresh `spool serve`, then reads of 20 lines on its channel. The chunks go as a
 * runner sends them: Buffers in binary frames when the server advertises them (`binary` in the figures), else
 * JSON text; `json` sends JSON text whatever the server takes.
 */
async function spoolStream(bin: string | undefined, env: NodeJS.ProcessEnv = {}, json = false): Promise<SpoolFigures> {
  const server = await startServerProcess({ ...(bin ? { SPOOL_BENCH_BIN: bin } : {}), ...env });
  try {
    const client = await server.connect();
    await client.initialize("bench", { root: server.root });
    await client.request("run/create", { alias: "s" });
    const { path } = await client.request("proposal/create", { run: "s", tool: "sh", command: `produce ${mb} MB`, sandbox: "full" });
    await client.request("run/resolve", { run: "s", path, decision: "accept", runner: "self" });
    const rssStart = rssMb(server.pid, "VmRSS");
    const cpu0 = cpuSeconds(server.pid);
    const runq0 = runQueueSeconds(server.pid);
    const binary = !json && client.bytes;
    const { seconds: wall, steady } = await pump(client, (i) => ({
      run: "s",
      path,
      channel: 1,
      chunk: (binary ? buffers : texts)[i % texts.length],
      seq: i + 1,
    }));
    const cpu = cpuSeconds(server.pid) - cpu0;
    const runq = runQueueSeconds(server.pid) - runq0;
    const rss = rssMb(server.pid, "VmHWM");
    await client.request("stream/completed", { run: "s", path, exit_code: 0 });
    const channel = (await client.request("entry/list", { run: "s", pattern: "sh://*_1" })).entries[0];
    if (channel.bytes !== chunks * CHUNK) throw new Error(`stored ${channel.bytes} bytes, expected ${chunks * CHUNK}`);
    const tail: number[] = [];
    const slice: number[] = [];
    const tailServer: [number, number][] = [];
    const sliceServer: [number, number][] = [];
    const timed = async (params: object, walls: number[], during: [number, number][]) => {
      const s0 = schedstat(server.pid);
      const t = performance.now();
      await client.request("entry/get", params);
      walls.push(performance.now() - t);
      const s1 = schedstat(server.pid);
      during.push([(s1[0] - s0[0]) / 1e6, (s1[1] - s0[1]) / 1e6]);
    };
    for (let i = 0; i < 20; i++) {
      await timed({ run: "s", path: channel.path, tail: 20 }, tail, tailServer);
      await timed({ run: "s", path: channel.path, line: Math.floor((channel.lines * (i + 1)) / 22), limit: 20 }, slice, sliceServer);
    }
    client.close();
    return { mbps: mb / wall, steady, cpu, runq, wall, rss, rssStart, tail, slice, tailServer, sliceServer, binary };
  } finally {
    await server.stop();
  }
}

/** The embedded runner: a local process's output, accept → channel at 200; MB/s and the server's CPU s per GB. */
async function embeddedRunner(bin: string | undefined, env: NodeJS.ProcessEnv = {}): Promise<{ mbps: number; cpuPerGb: number }> {
  const server = await startServerProcess({ ...(bin ? { SPOOL_BENCH_BIN: bin } : {}), ...env });
  try {
    const client = await server.connect();
    await client.initialize("bench", { root: server.root });
    await client.request("run/create", { alias: "e" });
    const bytes = chunks * CHUNK;
    const { path } = await client.request("proposal/create", {
      run: "e",
      tool: "sh",
      command: `yes 'spool runner throughput line of text' | head -c ${bytes}`,
    });
    // The end is the producer's stream/finished (every connection of the project gets it), not polling: entry/get
    // every 10 ms cost the server CPU in proportion to the wall time, so a round slowed by the machine's load
    // counted more CPU per GB for the polls alone.
    let finished!: () => void;
    const ended = new Promise<void>((resolve) => (finished = resolve));
    const off = client.on("stream/finished", (n: { path: string }) => n.path === path && finished());
    const start = performance.now();
    const cpu0 = cpuSeconds(server.pid);
    const resolved = await client.request("run/resolve", { run: "e", path, decision: "accept", runner: "local" });
    const channel = resolved.channels[0].path;
    await ended;
    off();
    let entry: { status: number; bytes: number };
    while ((entry = await client.request("entry/get", { run: "e", path: channel, tail: 1 })).status === 102) await new Promise((r) => setTimeout(r, 10));
    const seconds = (performance.now() - start) / 1000;
    const cpu = cpuSeconds(server.pid) - cpu0;
    if (entry.bytes !== bytes || entry.status !== 200) throw new Error(`expected ${bytes} bytes at 200, got ${entry.bytes} at ${entry.status}`);
    client.close();
    return { mbps: mb / seconds, cpuPerGb: (cpu * 1024) / mb };
  } finally {
    await server.stop();
  }
}

/** Per-command start latency: `true` on the embedded runner, accept → both channels ended (stream/end), 20 times. */
async function startLatency(env: NodeJS.ProcessEnv): Promise<number[]> {
  const server = await startServerProcess(env);
  try {
    const client = await server.connect();
    await client.initialize("bench", { root: server.root });
    await client.request("run/create", { alias: "t" });
    const times: number[] = [];
    for (let i = 0; i < 21; i++) {
      const { path } = await client.request("proposal/create", { run: "t", tool: "sh", command: "true" });
      let ends = 0;
      let done!: () => void;
      const ended = new Promise<void>((resolve) => (done = resolve));
      const off = client.on("stream/end", (p: { path: string }) => {
        if (p.path === path && ++ends === 2) done();
      });
      const start = performance.now();
      await client.request("run/resolve", { run: "t", path, decision: "accept", runner: "local" });
      await client.request("stream/subscribe", { run: "t", path });
      await ended;
      off();
      // The first command also starts the embedded runner: left out.
      if (i > 0) times.push(performance.now() - start);
    }
    client.close();
    return times.sort((a, b) => a - b);
  } finally {
    await server.stop();
  }
}

const commit = (() => {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: fileURLToPath(new URL(".", import.meta.url)), encoding: "utf8" }).trim();
  } catch {
    return "?";
  }
})();
console.log(`machine: ${machine()}; load ${load()}; HEAD ${commit}`);
console.log(`${mb} MB per path, 64 KiB chunks, ${WINDOW} in flight; ${rounds} round(s)`);
console.log(
  "MB/s: bare ws echo (JSON text, JSON.parse) vs one spool stream as a runner sends it (bin: binary frames where the server takes them, json: JSON text) and as JSON text (json); steady: both over their last three quarters (each server's start-up and warm-up left out); raw SQLite inserts vs the embedded runner; cpu: the serving process's CPU s per GB (all its threads); srv: the spool server while it ingested (runq: its event loop runnable but not running); srv_tail/srv_slice: the server's event loop during the slowest read, ms on a CPU + ms runnable waiting for one, / the most CPU any of the 20 reads took",
);
console.log(
  "round  load(1/5/15)     bare  stream  ratio  steady(bare/stream/ratio)  cpu_bare cpu_stream  json_text  ratio  cpu_json  srv_cpu/runq/wall_s  rss_MB(start/peak)  tail20_p50/max@read_ms  slice20_p50/max@read_ms  srv_tail_ms(max)  srv_slice_ms(max)   raw  embedded  ratio  cpu_raw  cpu_emb  start_p50/max_ms",
);
const trees = (process.env.SPOOL_BENCH_TREES ?? "")
  .split(",")
  .filter(Boolean)
  .map((t) => {
    const [label, rest] = t.split(/=(.*)/s) as [string, string];
    const [root, query] = rest.split("?");
    const env: NodeJS.ProcessEnv = Object.fromEntries(new URLSearchParams(query ?? ""));
    return { label, bin: join(root!, "bin", "spool.js"), env };
  });
const paths = new Set((process.env.SPOOL_BENCH_PATHS ?? "stream,embedded").split(","));
const skipped: Rate = { mbps: Number.NaN, cpuPerGb: Number.NaN };
for (let round = 1; round <= rounds; round++) {
  for (const tree of trees.length ? trees : [{ label: String(round), bin: undefined, env: {} }]) {
    const at = load();
    const bare = paths.has("stream") ? await bareEcho() : skipped;
    const s = paths.has("stream") ? await spoolStream(tree.bin, tree.env) : undefined;
    // Where the chunks went as binary frames, JSON text is measured too (on a server that takes only JSON text, it was).
    const j = s?.binary ? await spoolStream(tree.bin, tree.env, true) : s;
    const raw = paths.has("embedded") ? rawSqlite() : skipped;
    const embedded = paths.has("embedded") ? await embeddedRunner(tree.bin, tree.env) : skipped;
    const starts = paths.has("start") ? await startLatency({ ...(tree.bin ? { SPOOL_BENCH_BIN: tree.bin } : {}), ...tree.env }) : undefined;
    // p50/max, and which read (0: the first after the ingest) was the slowest.
    const ms = (xs: number[]) => {
      const max = Math.max(...xs);
      return `${percentile(
        [...xs].sort((a, b) => a - b),
        50,
      ).toFixed(2)}/${max.toFixed(2)}@${xs.indexOf(max)}`;
    };
    // The server's event loop during the slowest read (on a CPU + waiting for one), and the most CPU any read took.
    const server = (xs: number[], cpu: [number, number][]) => {
      const [run, wait] = cpu[xs.indexOf(Math.max(...xs))]!;
      return `${run.toFixed(2)}+${wait.toFixed(2)}/${Math.max(...cpu.map((c) => c[0])).toFixed(2)}`;
    };
    const [bareSteady, streamSteady] = [bare.steady ?? Number.NaN, s?.steady ?? Number.NaN];
    const steady = `${bareSteady.toFixed(0)}/${streamSteady.toFixed(0)}/${(streamSteady / bareSteady).toFixed(2)}`;
    console.log(
      [
        tree.label.padEnd(5),
        at.padEnd(15),
        bare.mbps.toFixed(1).padStart(5),
        (s?.mbps ?? Number.NaN).toFixed(1).padStart(6),
        ((s?.mbps ?? Number.NaN) / bare.mbps).toFixed(2).padStart(5),
        steady.padStart(25),
        bare.cpuPerGb.toFixed(1).padStart(8),
        s ? `${s.binary ? "bin " : "json "}${((s.cpu * 1024) / mb).toFixed(1)}`.padStart(10) : "-".padStart(10),
        (j?.mbps ?? Number.NaN).toFixed(1).padStart(9),
        ((j?.mbps ?? Number.NaN) / bare.mbps).toFixed(2).padStart(5),
        j ? ((j.cpu * 1024) / mb).toFixed(1).padStart(8) : "-".padStart(8),
        s ? `${s.cpu.toFixed(1)}/${s.runq.toFixed(1)}/${s.wall.toFixed(1)}`.padStart(19) : "-".padStart(19),
        s ? `${s.rssStart.toFixed(0)}/${s.rss.toFixed(0)}`.padStart(18) : "-".padStart(18),
        s ? ms(s.tail).padStart(22) : "-".padStart(22),
        s ? ms(s.slice).padStart(23) : "-".padStart(23),
        s ? server(s.tail, s.tailServer).padStart(16) : "-".padStart(16),
        s ? server(s.slice, s.sliceServer).padStart(17) : "-".padStart(17),
        raw.mbps.toFixed(1).padStart(5),
        embedded.mbps.toFixed(1).padStart(8),
        (embedded.mbps / raw.mbps).toFixed(2).padStart(5),
        raw.cpuPerGb.toFixed(1).padStart(7),
        embedded.cpuPerGb.toFixed(1).padStart(7),
        starts ? `${percentile(starts, 50).toFixed(1)}/${starts[starts.length - 1]!.toFixed(1)}`.padStart(16) : "",
      ].join("  "),
    );
  }
}
