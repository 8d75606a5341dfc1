// The WAL under a steady stream of small commits, as the load bench makes them (issue 24), without the rest of the
// server: each tree's openStore (its pragmas and checkpoint worker) on a fresh file in $TMPDIR, commits paced at a
// rate on the main thread, each one like a small append (a ~1 KiB row into an indexed table, an update of a
// per-producer row: a few 16 KiB pages). Prints per tree the commit time on the event loop (p50/p99/max, commits
// over 20 and 50 ms), the worst per-second p99, the WAL's largest size and how often it was started over (seen
// every 200 commits), then the process's CPU seconds (the checkpoint worker's included). A B A B: the trees take turns, each round on a fresh file.
// commits/s 0 is a flood: commits back to back, one event-loop turn (setImmediate) between two, as the server's group
// commits come when it cannot keep up; trees that report it print the checkpoint worker's RESTARTs (forced: after
// the catch-up rounds gave up) and its longest RESTART.
// Usage: SPOOL_BENCH_TREES="before=/tmp/base25,after=/work/main" npx tsx bench/wal.ts [seconds=15] [commits/s=2000] [rounds=2] [row bytes=1024]
// (each tree's dist/ must be built: `node scripts/build.mjs` in it)
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { percentile } from "./common.js";

const [SECONDS, RATE, ROUNDS, ROW] = [15, 2000, 2, 1024].map((d, i) => Number(process.argv[2 + i] ?? d)) as [number, number, number, number];
const trees = (process.env.SPOOL_BENCH_TREES ?? `this=${new URL("..", import.meta.url).pathname}`).split(",").map((t) => t.split("=") as [string, string]);
const PRODUCERS = 200;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

const walSize = (wal: string) => {
  try {
    return statSync(wal).size;
  } catch {
    return 0;
  }
};
/** The WAL header's checkpoint sequence: one more each time a writer starts the WAL over. */
const walRestarts = (wal: string) => {
  try {
    const fd = openSync(wal, "r");
    const header = Buffer.alloc(16);
    const n = readSync(fd, header, 0, 16, 0);
    closeSync(fd);
    return n === 16 ? header.readUInt32BE(12) : 0;
  } catch {
    return 0;
  }
};

async function run(label: string, root: string) {
  // The SQLite engine's files: in dist/store/sqlite/ since the store's engines have folders, dist/store/ before.
  const sqliteDir = existsSync(join(root, "dist/store/sqlite/database.js")) ? "dist/store/sqlite" : "dist/store";
  const { openStore, checkpointStats } = await import(join(root, sqliteDir, "database.js"));
  // The server's group commit notes each write for the checkpoint worker (activity.ts; trees since session 5) and
  // waits while the worker holds it for a RESTART (appendsHeld; since session 7): these commits do the same.
  const activity = existsSync(join(root, sqliteDir, "activity.js")) ? await import(join(root, sqliteDir, "activity.js")) : null;
  const dir = mkdtempSync(join(tmpdir(), "spool-bench-wal-"));
  const file = join(dir, "spool.db");
  const store = openStore(file);
  const db = store.sqlite;
  db.exec("CREATE TABLE entries (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL, seq INTEGER NOT NULL)");
  db.exec("CREATE TABLE chunks (id INTEGER PRIMARY KEY, entry INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL)");
  db.exec("CREATE UNIQUE INDEX chunks_entry_seq ON chunks (entry, seq)");
  const seed = db.prepare("INSERT INTO entries (id, bytes, seq) VALUES (?, 0, 0)");
  for (let i = 0; i < PRODUCERS; i++) seed.run(i);
  const insert = db.prepare("INSERT INTO chunks (entry, seq, data) VALUES (?, ?, ?)");
  const update = db.prepare("UPDATE entries SET bytes = bytes + ?, seq = ? WHERE id = ?");
  const begin = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  const data = Buffer.alloc(ROW, 120);
  const wal = `${file}-wal`;
  const restarts0 = walRestarts(wal);
  const durations: number[] = [];
  const perSecond: number[][] = [];
  let biggest = 0;
  let restarts = 0;
  let lastHeader = restarts0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let n = 0;
  // In a flood, the longest time between two commits: the event loop held by something else, or the commits held for the worker's RESTART.
  let stall = 0;
  let lastEnd = 0;
  while (performance.now() - start < SECONDS * 1000) {
    // Paced: commit while behind the schedule, else let the event loop turn.
    if (RATE === 0) await new Promise((r) => setImmediate(r));
    else if (n >= ((performance.now() - start) / 1000) * RATE) {
      await new Promise((r) => setImmediate(r));
      continue;
    }
    const held = store.appendsHeld?.();
    if (held) await held;
    const t0 = performance.now();
    if (RATE === 0 && n > 0) stall = Math.max(stall, t0 - lastEnd);
    begin.run();
    const producer = n % PRODUCERS;
    const seq = Math.floor(n / PRODUCERS) + 1;
    insert.run(producer, seq, data);
    update.run(data.length, seq, producer);
    commit.run();
    activity?.noteActivity(db, activity.WROTE);
    lastEnd = performance.now();
    const took = lastEnd - t0;
    durations.push(took);
    const second = Math.floor((t0 - start) / 1000);
    (perSecond[second] ??= []).push(took);
    n++;
    if (n % 200 === 0) {
      biggest = Math.max(biggest, walSize(wal));
      const header = walRestarts(wal);
      if (header !== lastHeader) restarts++;
      lastHeader = header;
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const worker = checkpointStats?.(store) as
    | { restarts: number; forcedRestarts: number; longestHeldMs?: number; longestForcedMs?: number; heldMs?: number }
    | null
    | undefined;
  biggest = Math.max(biggest, walSize(wal));
  durations.sort((a, b) => a - b);
  const worstSecond = Math.max(
    ...perSecond.filter(Boolean).map((s) =>
      percentile(
        s.sort((a, b) => a - b),
        99,
      ),
    ),
  );
  const fmt = (x: number) => x.toFixed(1);
  console.log(
    `${label.padEnd(8)} load ${load()}  ${(n / SECONDS).toFixed(0)} commits/s  commit p50 ${fmt(percentile(durations, 50))} p99 ${fmt(percentile(durations, 99))} max ${fmt(durations.at(-1)!)} ms` +
      `  >20ms ${durations.filter((d) => d > 20).length} >50ms ${durations.filter((d) => d > 50).length}  worst 1s p99 ${fmt(worstSecond)} ms` +
      `${RATE === 0 ? `  longest between commits ${fmt(stall)} ms` : ""}  WAL max ${(biggest / 2 ** 20).toFixed(0)} MiB, started over ≥${restarts}×  cpu ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s` +
      (worker
        ? `  RESTARTs ${worker.restarts} (forced ${worker.forcedRestarts}, longest ${fmt(worker.longestHeldMs ?? worker.longestForcedMs ?? Number.NaN)} ms${worker.heldMs === undefined ? "" : `, held ${fmt(worker.heldMs)} ms in all`})`
        : ""),
  );
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

console.log(`${SECONDS} s of ${RATE || "back-to-back"} commits/s of a ${ROW}-byte row per tree and round, ${ROUNDS} rounds`);
for (let round = 0; round < ROUNDS; round++) for (const [label, root] of trees) await run(label, root);
