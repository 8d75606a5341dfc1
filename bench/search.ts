// entry/search on a 1 GiB channel: the time to the answer for a pattern that matches 20 times near the channel's end
// (the search reads the whole GiB), and the latency of appends to another channel of the same store meanwhile
// against the same appends with no search, in turns (A: no search, B: a search; A B A B …) so a machine whose
// speed drifts moves both alike. In process, over the store itself (no sockets): the appends are what a `stream`
// call waits for (the group commit), so a search that held the server's thread would show in them at once.
// Then each kind of search once over the same GiB, each with a budget of its own: plain bytes, a regular expression,
// one without case, and a pathological one (`^(a+)+$`, which a backtracking engine spends its whole budget on at
// the first line of 40 a's and a '!': one such line is in every chunk).
// Usage: npx tsx bench/search.ts [GiB=1] [rounds=3]
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { migrateToLatest } from "../src/store/migrator.js";
import { chunkSearch } from "../src/store/search/search.js";
import { openStore } from "../src/store/sqlite/database.js";
import { machine, percentile } from "./common.js";

const GIB = Number(process.argv[2] ?? 1);
const ROUNDS = Number(process.argv[3] ?? 3);
const CHUNK = 64 * 1024;
const CHUNKS = Math.round((GIB * 2 ** 30) / CHUNK);
const NEEDLE = "NEEDLE-7f3a";

/** A chunk of 64 KiB of 128-byte lines, the n-th of the channel; the needle on one line of each of the last 20, a run of a's on one of each. */
function chunk(n: number): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < CHUNK / 128; i++) {
    const text =
      n >= CHUNKS - 20 && i === 100
        ? `${NEEDLE} found in chunk ${n}`
        : i === 50
          ? `${"a".repeat(40)}!`
          : `line ${n}.${i} of a long build log, nothing to see here`;
    lines.push(`${text.padEnd(127, ".")}\n`);
  }
  return Buffer.from(lines.join(""));
}

const dir = mkdtempSync(join(tmpdir(), "spool-bench-search-"));
const store = openStore(join(dir, "spool.db"));
try {
  await migrateToLatest(store);
  store.sqlite.exec(
    "INSERT INTO projects (id, name, root, created_at) VALUES (1, 'p', '/', 0); INSERT INTO runs (id, project_id, alias, status, created_at, updated_at) VALUES (1, 1, 'r', 102, 0, 0)",
  );
  const entry = store.sqlite.prepare(
    "INSERT INTO entries (id, run_id, path, scheme, turn, status, streamed, created_at, updated_at, attributes) VALUES (?, 1, ?, 'sh', 1, 102, 1, 0, 0, '{}')",
  );
  entry.run(1, "sh://turn_1/big_1");
  entry.run(2, "sh://turn_1/live_1");
  // The GiB through the store's own append, in groups (what a runner's stream calls do, minus the sockets).
  const filled = performance.now();
  for (let n = 0; n < CHUNKS; n += 64) {
    const group: Promise<unknown>[] = [];
    for (let k = n; k < Math.min(CHUNKS, n + 64); k++) group.push(store.appendChunk(1, chunk(k), k + 1, 102));
    await Promise.all(group);
  }
  console.log(`filled ${CHUNKS} chunks (${GIB} GiB) in ${((performance.now() - filled) / 1000).toFixed(1)} s`);
  const search = chunkSearch(store).search;
  const query = { pattern: NEEDLE, regex: false, ignoreCase: false, before: 0, after: 0, limit: 20, fromLine: 1, maxBytes: 256 * 1024 };
  // A first search starts the worker (and bundles it from the sources under tsx) and brings the file into the cache.
  await search([1], query, 120_000);
  let seq = 0;
  /** Appends of 200 bytes to the live channel every 2 ms until `until` resolves; each one's time to its commit. */
  async function appendsUntil(until: Promise<unknown>): Promise<number[]> {
    let done = false;
    void until.then(() => (done = true));
    const latencies: number[] = [];
    const pending: Promise<void>[] = [];
    while (!done) {
      const started = performance.now();
      pending.push(store.appendChunk(2, Buffer.from(`${"x".repeat(199)}\n`), ++seq, 102).then(() => void latencies.push(performance.now() - started)));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await Promise.all(pending);
    return latencies;
  }
  const fmt = (l: number[]) => {
    const s = [...l].sort((a, b) => a - b);
    return `${String(l.length).padStart(6)} ${percentile(s, 50).toFixed(2).padStart(7)} ${percentile(s, 99).toFixed(2).padStart(7)} ${s[s.length - 1]!.toFixed(2).padStart(7)}`;
  };
  console.log(machine());
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  console.log("round  turn            search_ms matches  appends  p50_ms  p99_ms  max_ms");
  for (let r = 1; r <= ROUNDS; r++) {
    // A: no search, for as long as the last search took (2 s the first time).
    const idle = await appendsUntil(new Promise((resolve) => setTimeout(resolve, 2000)));
    console.log(`${String(r).padStart(5)}  A (no search)    ${"-".padStart(9)} ${"-".padStart(7)} ${fmt(idle)}`);
    const started = performance.now();
    const cpu = process.cpuUsage();
    let answer: Awaited<ReturnType<typeof search>> | null = null;
    const running = search([1], query, 120_000).then((a) => {
      answer = a;
      return performance.now() - started;
    });
    const during = await appendsUntil(running);
    const ms = await running;
    const used = process.cpuUsage(cpu);
    const found = answer as Awaited<ReturnType<typeof search>> | null;
    console.log(
      `${String(r).padStart(5)}  B (searching)   ${ms.toFixed(0).padStart(9)} ${String(found?.matches.length).padStart(7)} ${fmt(during)}   cpu ${((used.user + used.system) / 1000).toFixed(0)} ms (all threads)`,
    );
  }
  console.log("\nkind            pattern          budget_ms  search_ms  matches  lines_passed  outcome");
  const kinds = [
    { kind: "plain", pattern: NEEDLE, regex: false, ignoreCase: false },
    { kind: "regex", pattern: `${NEEDLE}|never-there`, regex: true, ignoreCase: false },
    { kind: "ignore-case", pattern: NEEDLE.toLowerCase(), regex: false, ignoreCase: true },
    { kind: "pathological", pattern: "^(a+)+$", regex: true, ignoreCase: false },
    { kind: "pathological-i", pattern: "^(a+)+$", regex: true, ignoreCase: true },
  ];
  for (const k of kinds) {
    const budget = 60_000;
    const started = performance.now();
    const outcome = await search([1], { ...query, pattern: k.pattern, regex: k.regex, ignoreCase: k.ignoreCase }, budget).then(
      (a) => ({ matches: a.matches.length, lines: a.lines, word: a.timedOut ? "cut by the budget" : "whole" }),
      (error: Error) => ({ matches: 0, lines: 0, word: error.name }),
    );
    const ms = performance.now() - started;
    console.log(
      `${k.kind.padEnd(15)} ${k.pattern.slice(0, 16).padEnd(16)} ${String(budget).padStart(9)} ${ms.toFixed(0).padStart(10)} ${String(outcome.matches).padStart(8)} ${String(outcome.lines).padStart(13)}  ${outcome.word}`,
    );
  }
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
