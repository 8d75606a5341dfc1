// The two better-sqlite3 lines Spool loads (src/store/sqlite/sqlite-driver.ts: 12 on Node 20, 13 on Node 22 and 24) side
// by side on one Node, on the store's hot paths as raw driver calls: 64 KiB chunk appends (one INSERT and one
// counter UPDATE per transaction, Spool's pragmas, as compare.ts's raw path), then synchronous reads of them (one
// prepared SELECT of a chunk by its key, as the tail and slice reads walk them), then prepares of short statements
// (Kysely prepares what it runs; the store caches 256) and runs of one prepared one. Per line and round: MB/s and
// CPU s per GB of the appends, µs a chunk read, a prepare and a small get. Rounds alternate the lines (A B A B). A line whose
// binary does not load on this Node (12 built for another Node's ABI, 13 on Node 20) is said and left out.
// Usage: node --import tsx bench/sqlite-lines.ts [MB, default 256] [rounds, default 2]   (run with the Node to measure)
// SPOOL_BENCH_SQLITE=/dir/of/better-sqlite3,… measures those package directories instead (a 12 built for this Node
// elsewhere, say, where this tree's is built for another).
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { SQLITE_LINES } from "../src/store/sqlite/sqlite-driver.js";

const mb = Number(process.argv[2] ?? 256);
const rounds = Number(process.argv[3] ?? 2);
const CHUNK = 64 * 1024;
const chunks = Math.round((mb * 2 ** 20) / CHUNK);
const buffers = Array.from({ length: 64 }, (_, i) => Buffer.alloc(CHUNK, `chunk ${i} abcdefghijklmnopqrstuvwxyz\n`));
const require = createRequire(import.meta.url);

function load(name: string): { driver: typeof BetterSqlite3; version: string } | string {
  try {
    const driver = require(name) as typeof BetterSqlite3;
    new driver(":memory:").close();
    return { driver, version: (require(`${name}/package.json`) as { version: string }).version };
  } catch (error) {
    return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
  }
}

const cpu = (from: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6;
};

function measure(Driver: typeof BetterSqlite3) {
  const dir = mkdtempSync(join(tmpdir(), "spool-bench-lines-"));
  try {
    const db = new Driver(join(dir, "lines.db"));
    db.pragma("page_size = 16384");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("cache_size = -2048");
    db.exec(
      "CREATE TABLE chunks (entry_id INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (entry_id, seq)); CREATE TABLE entries (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL, last_seq INTEGER NOT NULL); INSERT INTO entries VALUES (1, 0, 0)",
    );
    const insert = db.prepare("INSERT INTO chunks (entry_id, seq, data) VALUES (1, ?, ?)");
    const update = db.prepare("UPDATE entries SET bytes = bytes + ?, last_seq = ? WHERE id = 1");
    const append = db.transaction((seq: number, data: Buffer) => {
      insert.run(seq, data);
      update.run(data.length, seq);
    });
    let start = performance.now();
    let cpu0 = process.cpuUsage();
    for (let i = 0; i < chunks; i++) append.immediate(i + 1, buffers[i % buffers.length]!);
    const appendSeconds = (performance.now() - start) / 1000;
    const appendCpu = cpu(cpu0);

    const read = db.prepare("SELECT data FROM chunks WHERE entry_id = 1 AND seq = ?").pluck();
    const reads = Math.min(chunks, 4000);
    start = performance.now();
    cpu0 = process.cpuUsage();
    let bytes = 0;
    for (let i = 0; i < reads; i++) bytes += (read.get(chunks - (i % chunks)) as Buffer).length;
    const readUs = ((performance.now() - start) * 1000) / reads;
    if (bytes === 0) throw new Error("read nothing");

    const prepares = 20000;
    start = performance.now();
    for (let i = 0; i < prepares; i++) db.prepare(`SELECT bytes, last_seq FROM entries WHERE id = ${1 + (i % 7)}`);
    const prepareUs = ((performance.now() - start) * 1000) / prepares;
    const row = db.prepare("SELECT bytes, last_seq FROM entries WHERE id = ?");
    const gets = 200000;
    start = performance.now();
    for (let i = 0; i < gets; i++) row.get(1);
    const getUs = ((performance.now() - start) * 1000) / gets;
    db.close();
    return { mbps: mb / appendSeconds, cpuPerGb: appendCpu * (1024 / mb), readUs, prepareUs, getUs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const given = process.env.SPOOL_BENCH_SQLITE?.split(",").filter(Boolean);
const lines = given ? given.map((dir) => ({ line: { package: dir }, loaded: load(dir) })) : SQLITE_LINES.map((line) => ({ line, loaded: load(line.package) }));
console.log(`node ${process.version} (Node-API ${process.versions.napi}, ABI ${process.versions.modules}); ${mb} MB of 64 KiB chunks a round`);
for (const { line, loaded } of lines) {
  if (typeof loaded === "string") console.log(`${line.package}: not measured here: ${loaded}`);
}
const usable = lines.filter((l) => typeof l.loaded !== "string");
for (let round = 1; round <= rounds; round++) {
  for (const { line, loaded } of usable) {
    const { driver, version } = loaded as { driver: typeof BetterSqlite3; version: string };
    const r = measure(driver);
    console.log(
      `round ${round} ${(given ? `${line.package}/` : line.package).slice(-40).padEnd(22)} ${version.padEnd(7)} load ${loadavg()[0]!.toFixed(1).padStart(5)}  append ${r.mbps.toFixed(1).padStart(6)} MB/s  cpu ${r.cpuPerGb.toFixed(2)} s/GB  read ${r.readUs.toFixed(1)} µs  prepare ${r.prepareUs.toFixed(2)} µs  get ${r.getUs.toFixed(2)} µs`,
    );
  }
}
