// One stream's ingest into each store, side by side in the same run: a `spool serve` process on SQLite (its
// home's file) and one on PostgreSQL (a fresh database on SPOOL_BENCH_POSTGRES_URL, e.g. the cluster of
// scripts/test-postgres.sh), each fed N MB in 64 KiB chunks over loopback WebSocket with up to 4
// unacknowledged chunks in flight, like a runner. Prints MB/s, call → acknowledgement p50/p99, CPU seconds per GB
// of the server process and of the database's PostgreSQL backends (steadier than MB/s on a shared machine), the
// load average, and PostgreSQL's rate as a fraction of SQLite's in the same round.
// SPOOL_BENCH_TREES="before=/tmp/old,after=/work/main" runs each round once per tree (A B A B), each tree's
// bin/spool.js under the same client.
// Usage: SPOOL_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:54329/postgres npx tsx bench/stores.ts [MB] [rounds]
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { machine, percentile, startServerProcess } from "./common.js";

const CHUNK = 64 * 1024;
const WINDOW = 4;
const mb = Number(process.argv[2] ?? 256);
const rounds = Number(process.argv[3] ?? 1);
const admin = process.env.SPOOL_BENCH_POSTGRES_URL;

async function freshDatabase(): Promise<{ url: string; name: string }> {
  const name = `spool_bench_${randomBytes(4).toString("hex")}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const url = new URL(admin!);
  url.pathname = `/${name}`;
  return { url: url.toString(), name };
}

async function dropDatabase(name: string): Promise<void> {
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await client.end();
}

/** utime + stime of a process, in seconds (0 once it is gone). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds of the PostgreSQL backends serving `database` now (on this machine: the cluster must be local). */
async function backendSeconds(database: string | undefined): Promise<number> {
  if (!database) return 0;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1", [database]);
    return rows.reduce((sum, r) => sum + cpuSeconds(r.pid), 0);
  } finally {
    await client.end();
  }
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

async function ingest(label: string, env: NodeJS.ProcessEnv, database?: string): Promise<number> {
  const server = await startServerProcess(env);
  try {
    const client = await server.connect();
    await client.initialize("bench", { root: server.root });
    await client.request("run/create", { alias: "ingest" });
    const { path } = await client.request("proposal/create", { run: "ingest", tool: "sh", command: `produce ${mb} MB`, sandbox: "full" });
    await client.request("run/resolve", { run: "ingest", path, decision: "accept", runner: "self" });
    const chunks = Math.round((mb * 2 ** 20) / CHUNK);
    const line = `${"abcdefghijklmnopqrstuvwxyz".repeat(3)}\n`;
    const latencies = new Float64Array(chunks);
    const inFlight = new Set<Promise<void>>();
    const at = load();
    const cpu0 = cpuSeconds(server.pid);
    const pg0 = await backendSeconds(database);
    const start = performance.now();
    for (let i = 0; i < chunks; i++) {
      const chunk = `${String(i).padStart(10, "0")} ${line.repeat(Math.ceil(CHUNK / line.length))}`.slice(0, CHUNK);
      const t = performance.now();
      const call: Promise<void> = client.request("stream", { run: "ingest", path, channel: 1, chunk, seq: i + 1 }).then(() => {
        latencies[i] = performance.now() - t;
        inFlight.delete(call);
      });
      inFlight.add(call);
      if (inFlight.size >= WINDOW) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const seconds = (performance.now() - start) / 1000;
    const gb = (chunks * CHUNK) / 2 ** 30;
    const serverCpu = (cpuSeconds(server.pid) - cpu0) / gb;
    const pgCpu = database ? ((await backendSeconds(database)) - pg0) / gb : Number.NaN;
    const sorted = Array.from(latencies).sort((a, b) => a - b);
    const mbps = (chunks * CHUNK) / 2 ** 20 / seconds;
    console.log(
      `${label.padEnd(22)}  ${at.padEnd(15)}  ${String(mb).padEnd(7)}  ${mbps.toFixed(1).padEnd(6)}  ${percentile(sorted, 50).toFixed(2).padEnd(6)}  ${percentile(sorted, 99).toFixed(2).padEnd(7)}  ${serverCpu.toFixed(1).padEnd(7)}  ${Number.isNaN(pgCpu) ? "-" : pgCpu.toFixed(1)}`,
    );
    client.close();
    return mbps;
  } finally {
    await server.stop();
  }
}

const trees = (process.env.SPOOL_BENCH_TREES ?? "")
  .split(",")
  .filter(Boolean)
  .map((t) => {
    const [label, root] = t.split(/=(.*)/s) as [string, string];
    return { label, env: { SPOOL_BENCH_BIN: join(root, "bin", "spool.js") } as NodeJS.ProcessEnv };
  });
console.log(`machine: ${machine()}`);
console.log(`${mb} MB per store, 64 KiB chunks, ${WINDOW} in flight; ${rounds} round(s); srv_cpu: the server's CPU s per GB; pg_cpu: its PostgreSQL backends'`);
console.log("store                   load(1/5/15)     size_mb  MB/s    p50_ms  p99_ms   srv_cpu  pg_cpu");
for (let round = 1; round <= rounds; round++) {
  for (const tree of trees.length ? trees : [{ label: "", env: {} as NodeJS.ProcessEnv }]) {
    const name = (store: string) => (tree.label ? `${store} ${tree.label}` : store);
    const sqlite = await ingest(name("sqlite"), tree.env);
    if (!admin) {
      console.log("postgres    (skipped: set SPOOL_BENCH_POSTGRES_URL)");
      continue;
    }
    const database = await freshDatabase();
    try {
      const postgres = await ingest(name("postgres"), { ...tree.env, SPOOL_DATABASE_URL: database.url }, database.name);
      console.log(`${name("ratio pg/sqlite").padEnd(22)}  ${(postgres / sqlite).toFixed(2)}`);
    } finally {
      await dropDatabase(database.name);
    }
  }
}
