// The load bench's store work in process, without sockets or timing: what a group commit and a poller's read cost.
// 200 channels each take 400 one-line chunks of 512 bytes, round robin, in group commits of G chunks (the load bench's
// groups hold 2 at p50, 7 on average), through the store's appendChunk; then 5000 tails of 20 lines (its pollers'
// entry/get). Prints this process's CPU per chunk and per read (all threads: the checkpoint worker's too) and the WAL
// frames (pages) each chunk wrote, counted from the wal-index header in the -shm file. Deterministic apart from the
// CPU, so steadier than the load bench on a shared machine.
// SPOOL_BENCH_TREES="before=/tmp/old,after=/work/main" runs each round once per tree (A B A B) from its dist/.
// Usage: npx tsx bench/append-cost.ts [G=4] [rounds=2]
import { existsSync, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const G = Number(process.argv[2] ?? 4);
const ROUNDS = Number(process.argv[3] ?? 2);
const CHANNELS = 200;
const CHUNKS = 400;
const READS = 5000;
const here = fileURLToPath(new URL("..", import.meta.url));
const trees = (process.env.SPOOL_BENCH_TREES ?? `this=${here}`).split(",").map((t) => t.split("=") as [string, string]);

interface Store {
  sqlite: { exec(sql: string): void; prepare(sql: string): { run(...args: unknown[]): unknown } };
  appendChunk(entryId: number, data: Buffer, seq: number | undefined, open: number): Promise<unknown>;
  close(): Promise<void>;
}

async function round(tree: string): Promise<string> {
  // src/store/sqlite/ since the store's engines have folders; src/store/ in older trees.
  const database = ["dist/store/sqlite/database.js", "dist/store/database.js"].map((file) => join(tree, file)).find((file) => existsSync(file))!;
  const { openStore } = (await import(database)) as { openStore(file: string): Store };
  const { migrateToLatest } = (await import(join(tree, "dist/store/migrator.js"))) as { migrateToLatest(s: Store, dir: string): Promise<unknown> };
  const { chunkReads } = (await import(join(tree, "dist/store/chunk-reads.js"))) as {
    chunkReads(s: Store): { readLines(id: number, line: number, count: number, max: number): Promise<unknown> };
  };
  const dir = mkdtempSync(join(tmpdir(), "spool-bench-append-"));
  const file = join(dir, "spool.db");
  const store = openStore(file);
  try {
    // A tree's compiled migrations (dist/migrations), or the .sql folder of a tree from before they were TypeScript.
    await migrateToLatest(store, existsSync(join(tree, "dist/migrations")) ? join(tree, "dist/migrations") : join(tree, "migrations"));
    store.sqlite.exec(
      "INSERT INTO projects (id, name, root, created_at) VALUES (1, 'p', '/', 0); INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'r', 102, 0, 0)",
    );
    // A producer's log and its two output channels per producer, as the load bench's runs have them.
    const entry = store.sqlite.prepare(
      "INSERT INTO entries (id, run_id, path, scheme, turn, status, streamed, created_at, updated_at, attributes) VALUES (?, 1, ?, 'sh', 1, 102, 1, 0, 0, ?)",
    );
    for (let id = 1; id <= CHANNELS * 3; id++) {
      entry.run(id, `sh://turn_1/c_${id}`, JSON.stringify({ command: "perl -e '…' ".repeat(8), channel: 1, name: "stdout", log: `log://turn_1/c_${id}` }));
    }
    const shm = openSync(`${file}-shm`, "r");
    const header = Buffer.alloc(48);
    // mxFrame of the wal-index header: frames in the WAL (0 again once the WAL is started over).
    const frameCount = () => {
      readSync(shm, header, 0, 48, 0);
      return header.readUInt32LE(16);
    };
    const line = (i: number) => Buffer.from(`${Date.now().toFixed(3)} ${String(i).padStart(6, "0")} ${"x".repeat(482)}\n`);
    let frames = 0;
    const before = process.cpuUsage();
    for (let seq = 1; seq <= CHUNKS; seq++) {
      for (let c = 0; c < CHANNELS; c += G) {
        const from = frameCount();
        const group: Promise<unknown>[] = [];
        for (let j = c; j < Math.min(CHANNELS, c + G); j++) group.push(store.appendChunk(j * 3 + 1, line(seq), seq, 102));
        await Promise.all(group);
        const to = frameCount();
        frames += to >= from ? to - from : to;
      }
    }
    const appendCpu = process.cpuUsage(before);
    const reads = chunkReads(store);
    const beforeReads = process.cpuUsage();
    for (let r = 0; r < READS; r++) await reads.readLines(((r * 37) % CHANNELS) * 3 + 1, CHUNKS - 20, 20, 1 << 20);
    const readCpu = process.cpuUsage(beforeReads);
    const us = (u: NodeJS.CpuUsage) => u.user + u.system;
    return `${(us(appendCpu) / (CHANNELS * CHUNKS)).toFixed(1).padStart(8)} ${(frames / (CHANNELS * CHUNKS)).toFixed(2).padStart(8)} ${(us(readCpu) / READS).toFixed(0).padStart(9)}`;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`group commits of ${G} chunks; load average ${loadavg()[0]!.toFixed(2)} at the start`);
console.log("round     load  µs/chunk  frames/chunk  µs/tail-20");
for (let r = 0; r < ROUNDS; r++) {
  for (const [label, tree] of trees) {
    const load = loadavg()[0]!.toFixed(2);
    console.log(`${label.padEnd(8)} ${load.padStart(5)} ${await round(tree)}`);
  }
}
