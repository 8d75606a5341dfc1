// Claim latency and the server's CPU per claim (runner pools, SPOOL_BENCH_POSTGRES_URL for PostgreSQL): a `spool
// serve` process (two sharing the database with SPOOL_BENCH_SERVERS=2, runners and clients alternating between them),
// `runners` runners (default 10) of one label pool attached from this process, each with capacity 1, answering
// runner/exec at once and ending the command right after (so the bench measures the server, not a process start).
// Phase "queued": the runners drained, `commands` (default 500) commands accepted for the pool (all queued), then the
// runners let claim: accept → the runner's start (runner/exec received) p50/p99, a runner's end → its next start
// (the claim's own turnaround) p50/p99, and the servers' CPU per command over the whole drain (its finish, the take,
// the dispatch, the start: all threads, /proc/PID/task/*/schedstat). Phase "free": as many commands with every runner
// free, one after another: accept → start p50/p99, the take skipped (a free runner of the pool is sent it at once).
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import pg from "pg";
import { SpoolClient } from "../src/client/spool-client.js";
import { machine, percentile, startServerProcess } from "./common.js";

const commands = Number(process.argv[2] ?? 500);
const runnerCount = Number(process.argv[3] ?? 10);
const postgres = process.env.SPOOL_BENCH_POSTGRES_URL;
const serverCount = postgres && process.env.SPOOL_BENCH_SERVERS === "2" ? 2 : 1;

/** A fresh database on the PostgreSQL server of `admin`, dropped by `drop`. */
async function freshDatabaseAt(admin: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `spool_bench_${randomBytes(4).toString("hex")}`;
  const query = async (text: string) => {
    const client = new pg.Client({ connectionString: admin });
    await client.connect();
    await client.query(text);
    await client.end();
  };
  await query(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

function cpuNs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns;
}

const ms = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`;
};

async function main(): Promise<void> {
  const db = postgres ? await freshDatabaseAt(postgres) : null;
  const env = db ? { SPOOL_DATABASE_URL: db.url } : {};
  const first = await startServerProcess({ ...env, SPOOL_LOCAL_RUNNER: "off" });
  const servers = [first];
  if (serverCount === 2) servers.push(await startServerProcess({ ...env, SPOOL_LOCAL_RUNNER: "off", SPOOL_TOKEN_FILE: first.tokenFile }));
  const join = async (i: number, name: string, token = first.token) => {
    const server = servers[i % servers.length]!;
    const client = await SpoolClient.connect(server.url, { token });
    await client.initialize("bench", { root: first.root, client: { name, version: "1" } });
    return client;
  };
  const clients = [await join(0, "bench-a"), await join(1, "bench-b")];
  const admin = clients[0]!;
  await admin.call("run/create", { alias: "claims" });
  // The runners' own credential (a runner's hears only what it must act on, as a deployed runner's does).
  const runnerToken = (await admin.call("token/create", { name: "bench-runners", role: "runner" })).token;
  const startedAt = new Map<string, number>();
  const acceptedAt = new Map<string, number>();
  const turnaround: number[] = [];
  const runners: SpoolClient[] = [];
  const took: number[] = [];
  // Each runner's last stream/completed, awaited before the clients close (else the close rejects it).
  const ends = new Set<Promise<unknown>>();
  for (let i = 0; i < runnerCount; i++) {
    const client = await join(i, `runner-${i}`, runnerToken);
    let endedAt: number | null = null;
    took.push(0);
    client.handle("runner/exec", (params: { run: string; path: string }) => {
      took[i]!++;
      const now = performance.now();
      startedAt.set(params.path, now);
      if (endedAt !== null) turnaround.push(now - endedAt);
      // Ends right after it started: the runner is free again once the server took its end.
      setImmediate(() => {
        endedAt = performance.now();
        const end = client.call("stream/completed", { run: params.run, path: params.path, exit_code: 0 });
        ends.add(end);
        void end.finally(() => ends.delete(end));
      });
      return { started: true, target: { backend: "local" } };
    });
    await client.call("runner/attach", { name: `r${i}`, backend: "local", labels: { pool: "bench" }, capacity: 1 });
    runners.push(client);
  }
  const propose = async (i: number) => {
    const client = clients[i % clients.length]!;
    const { path } = await client.call("proposal/create", {
      run: "claims",
      tool: "sh",
      command: `true ${i}`,
      sandbox: "full",
      runner: { labels: { pool: "bench" } },
    });
    acceptedAt.set(path, performance.now());
    await clients[(i + 1) % clients.length]!.call("run/resolve", { run: "claims", path, decision: "accept" });
    return path;
  };
  const allStarted = (paths: string[]) =>
    new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (paths.every((p) => startedAt.has(p))) {
          clearInterval(check);
          resolve();
        }
      }, 5);
    });

  // Queued: every runner drained, the commands accepted, then the runners let claim.
  for (let i = 0; i < runnerCount; i++) await admin.call("runner/drain", { name: `r${i}` });
  const queued: string[] = [];
  for (let i = 0; i < commands; i++) queued.push(await propose(i));
  const cpu0 = servers.map((s) => cpuNs(s.pid));
  const wall0 = performance.now();
  for (let i = 0; i < runnerCount; i++) await admin.call("runner/drain", { name: `r${i}`, drain: false });
  await allStarted(queued);
  const wall = performance.now() - wall0;
  const cpu = servers.reduce((n, s, i) => n + (cpuNs(s.pid) - cpu0[i]!), 0) / 1e6;
  const tookQueued = [...took];
  const waits = queued.map((p) => startedAt.get(p)! - acceptedAt.get(p)!);

  // Free: one command at a time, every runner idle.
  const free: string[] = [];
  const freeLatency: number[] = [];
  for (let i = 0; i < commands; i++) {
    const path = await propose(commands + i);
    await allStarted([path]);
    freeLatency.push(startedAt.get(path)! - acceptedAt.get(path)!);
    free.push(path);
  }
  console.log(
    `${machine()}; load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  console.log(`${postgres ? `PostgreSQL, ${serverCount} server${serverCount === 1 ? "" : "s"}` : "SQLite, 1 server"}; ${runnerCount} runners of capacity 1`);
  console.log(`queued: ${commands} commands taken in ${wall.toFixed(0)} ms (${((commands / wall) * 1000).toFixed(0)}/s)`);
  console.log(`  accept → start (the wait in the queue): ${ms(waits)}`);
  console.log(`  a runner's end → its next start (the claim): ${ms(turnaround)}`);
  console.log(`  taken by each runner (odd ones on the second server): ${tookQueued.join(" ")}`);
  console.log(`  servers' CPU per command (its end, the take, the dispatch, its start): ${(cpu / commands).toFixed(2)} ms`);
  console.log(`free: accept → start, one at a time: ${ms(freeLatency)}`);
  await Promise.all(ends);
  for (const c of [...clients, ...runners]) c.close();
  await Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          process.once("SIGCHLD", () => resolve());
          process.kill(s.pid, "SIGTERM");
          const wait = setInterval(() => {
            try {
              process.kill(s.pid, 0);
            } catch {
              clearInterval(wait);
              resolve();
            }
          }, 50);
        }),
    ),
  );
  await db?.drop();
}

await main();
