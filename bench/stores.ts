// One stream's ingest into each store, side by side in the same run: a `spool serve` process on SQLite (its
// home's file) and one on PostgreSQL (a fresh database on SPOOL_BENCH_POSTGRES_URL, e.g. the cluster of
// scripts/test-postgres.sh), each fed N MB in 64 KiB chunks over loopback WebSocket with up to 4
// unacknowledged chunks in flight, like a runner. Prints MB/s and call → acknowledgement p50/p99.
// Usage: SPOOL_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:54329/postgres npx tsx bench/stores.ts [MB]
import { randomBytes } from "node:crypto";
import pg from "pg";
import { machine, percentile, startServerProcess } from "./common.js";

const CHUNK = 64 * 1024;
const WINDOW = 4;
const mb = Number(process.argv[2] ?? 256);
const admin = process.env.SPOOL_BENCH_POSTGRES_URL;

async function freshDatabase(): Promise<string> {
  const name = `spool_bench_${randomBytes(4).toString("hex")}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const url = new URL(admin!);
  url.pathname = `/${name}`;
  return url.toString();
}

async function ingest(label: string, env: NodeJS.ProcessEnv): Promise<void> {
  const server = await startServerProcess(env);
  try {
    const client = await server.connect();
    await client.initialize("bench", { root: server.home });
    await client.request("run/create", { alias: "ingest" });
    const { path } = await client.request("proposal/create", { run: "ingest", tool: "sh", command: `produce ${mb} MB` });
    await client.request("run/resolve", { run: "ingest", path, decision: "accept", runner: "self" });
    const chunks = Math.round((mb * 2 ** 20) / CHUNK);
    const line = `${"abcdefghijklmnopqrstuvwxyz".repeat(3)}\n`;
    const latencies = new Float64Array(chunks);
    const inFlight = new Set<Promise<void>>();
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
    const sorted = Array.from(latencies).sort((a, b) => a - b);
    console.log(
      `${label.padEnd(10)}  ${String(mb).padEnd(7)}  ${((chunks * CHUNK) / 2 ** 20 / seconds).toFixed(1).padEnd(6)}  ${percentile(sorted, 50).toFixed(2).padEnd(6)}  ${percentile(sorted, 99).toFixed(2)}`,
    );
    client.close();
  } finally {
    await server.stop();
  }
}

console.log(`machine: ${machine()}`);
console.log("store       size_mb  MB/s    p50_ms  p99_ms");
await ingest("sqlite", {});
if (admin) await ingest("postgres", { SPOOL_DATABASE_URL: await freshDatabase() });
else console.log("postgres    (skipped: set SPOOL_BENCH_POSTGRES_URL)");
