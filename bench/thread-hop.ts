// What handing SQLite's append to a thread costs by itself, without the server: 64 KiB chunks in groups of
// `group` (one transaction each, an INSERT per chunk and one UPDATE, Spool's pragmas, no checkpoints: Spool's
// checkpoint worker copies the WAL), N MB, three ways — `inline` (the transactions on this thread), `thread`
// (this thread copies each group's chunks into a shared ring and posts its offsets, a worker_threads thread runs
// the transaction on its own connection and answers; up to `inflight` groups handed over and unanswered, as the
// stream's 4 chunks in flight), `echo` (the same hand-over and answer, the thread does nothing: the hops alone).
// Per way: MB/s, CPU s per GB of each thread (/proc/self/task/*/schedstat) and the hops' times (µs, one clock):
// handed over → the thread has it, → its answer is back on this thread.
// Usage: npx tsx bench/thread-hop.ts [MB, default 512] [group, default 2] [inflight, default 2] [rounds, default 2]
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { sqliteDriver, sqliteDriverPath } from "../src/store/sqlite/sqlite-driver.js";

const CHUNK = 64 * 1024;
const mb = Number(process.argv[2] ?? 512);
const group = Number(process.argv[3] ?? 2);
const inflight = Number(process.argv[4] ?? 2);
const rounds = Number(process.argv[5] ?? 2);
const groups = Math.round((mb * 2 ** 20) / CHUNK / group);
const driver = sqliteDriverPath();
const SQLite = sqliteDriver();
const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(CHUNK, `chunk ${i} abcdefghijklmnopqrstuvwxyz\n`));

const SETUP = `
const setup = (SQLite, file) => {
  const db = new SQLite(file);
  db.pragma("page_size = 16384");
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("wal_autocheckpoint = 0");
  db.exec("CREATE TABLE IF NOT EXISTS chunks (entry_id INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (entry_id, seq)); CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL, last_seq INTEGER NOT NULL); INSERT OR IGNORE INTO entries VALUES (1, 0, 0)");
  const insert = db.prepare("INSERT INTO chunks (entry_id, seq, data) VALUES (1, ?, ?)");
  const update = db.prepare("UPDATE entries SET bytes = bytes + ?, last_seq = ? WHERE id = 1");
  let seq = 0;
  const txn = db.transaction((datas) => {
    let bytes = 0;
    for (const d of datas) { insert.run(++seq, d); bytes += d.length; }
    update.run(bytes, seq);
  });
  return { db, append: (datas) => txn.immediate(datas) };
};`;

const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const SQLite = require(workerData.driver);
${SETUP}
const { append } = workerData.echo ? { append: () => {} } : setup(SQLite, workerData.file);
const ring = Buffer.from(workerData.ring);
const now = () => Number(process.hrtime.bigint() / 1000n);
parentPort.on("message", (m) => {
  const got = now();
  const datas = [];
  for (let i = 0; i < m.meta.length; i += 2) datas.push(ring.subarray(m.meta[i], m.meta[i] + m.meta[i + 1]));
  append(datas);
  parentPort.postMessage({ id: m.id, got, done: now() });
});`;

const now = () => Number(process.hrtime.bigint() / 1000n);

function threads(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      out.set(tid, Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8").split(" ")[0]));
    } catch {}
  }
  return out;
}

const q = (xs: number[], p: number) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

async function run(way: "inline" | "thread" | "echo"): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "spool-bench-hop-"));
  const file = join(dir, "hop.db");
  try {
    if (way === "inline") {
      const { db, append } = new Function("SQLite", `${SETUP}; return setup;`)(SQLite)(SQLite, file);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let g = 0; g < groups; g++) append(Array.from({ length: group }, (_, i) => chunks[(g * group + i) % 64]));
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      db.close();
      return `${(mb / seconds).toFixed(1)} MB/s  cpu ${((((cpu.user + cpu.system) / 1e6) * 1024) / mb).toFixed(2)} s/GB`;
    }
    const ringBuffer = new SharedArrayBuffer(4 * 1024 * 1024);
    const ring = Buffer.from(ringBuffer);
    if (way === "thread") new Function("SQLite", `${SETUP}; return setup;`)(SQLite)(SQLite, file).db.close();
    const before = new Set(readdirSync("/proc/self/task"));
    const worker = new Worker(WORKER, { eval: true, workerData: { driver, file, ring: ringBuffer, echo: way === "echo" } });
    const workerTid = readdirSync("/proc/self/task").find((t) => !before.has(t))!;
    await new Promise((r) => worker.once("online", r));
    const c0 = threads();
    const t0 = performance.now();
    const sent = new Map<number, number>();
    const handOver: number[] = [];
    const answer: number[] = [];
    const roundTrip: number[] = [];
    let next = 0;
    let answered = 0;
    let offset = 0;
    await new Promise<void>((resolve) => {
      const send = () => {
        const meta: number[] = [];
        for (let i = 0; i < group; i++) {
          if (offset + CHUNK > ring.length) offset = 0;
          chunks[(next * group + i) % 64]!.copy(ring, offset);
          meta.push(offset, CHUNK);
          offset += CHUNK;
        }
        sent.set(next, now());
        worker.postMessage({ id: next++, meta });
      };
      worker.on("message", (m: { id: number; got: number; done: number }) => {
        const back = now();
        const at = sent.get(m.id)!;
        handOver.push(m.got - at);
        answer.push(back - m.done);
        roundTrip.push(back - at);
        if (++answered === groups) return resolve();
        if (next < groups) send();
      });
      for (let i = 0; i < inflight && next < groups; i++) send();
    });
    const seconds = (performance.now() - t0) / 1000;
    const c1 = threads();
    await worker.terminate();
    const perGb = (ns: number) => (((ns / 1e9) * 1024) / mb).toFixed(2);
    const main = c1.get(String(process.pid))! - c0.get(String(process.pid))!;
    const thread = (c1.get(workerTid) ?? 0) - (c0.get(workerTid) ?? 0);
    let other = 0;
    for (const [tid, ns] of c1) if (tid !== String(process.pid) && tid !== workerTid) other += ns - (c0.get(tid) ?? 0);
    const us = (xs: number[]) => `${q(xs, 50)}/${q(xs, 90)}/${q(xs, 99)}`;
    return `${(mb / seconds).toFixed(1)} MB/s  cpu main ${perGb(main)} thread ${perGb(thread)} other ${perGb(other)} s/GB; per group µs p50/p90/p99: hand-over ${us(handOver)}, answer ${us(answer)}, round trip ${us(roundTrip)}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`# ${mb} MB, groups of ${group} × 64 KiB, ${inflight} groups in flight`);
for (let r = 1; r <= rounds; r++) {
  for (const way of ["inline", "thread", "echo"] as const) console.log(`${way.padEnd(7)} load ${loadavg()[0]!.toFixed(2)}  ${await run(way)}`);
}
