/**
 * A long agent run against a stand-in model that answers at once: per window of turns, the server's CPU a turn and
 * its RSS, and the agent's added latency a turn (from the end of one answer to the next request). The stand-in is a
 * chat-completions server in this process; it says a 32k window in its model list (vLLM's max_model_len), calls
 * `get` (no approval) with a ~600-character reply every turn and `done` every 50th (a loop's step limit), and
 * answers a summary request (no tools) with a short summary. Turns are queued as loops of 50 (run/prompt).
 *
 *   npx tsx bench/agent-turns.ts [turns] [window]          (SPOOL_BENCH_BIN=/other/tree/bin/spool.js: another tree)
 *
 * SPOOL_BENCH_HEAP_AT=500,1000 writes a heap snapshot of the server at those turns (node --heapsnapshot-signal, into
 * SPOOL_BENCH_HEAP_DIR or the working directory); `npx tsx bench/heap-diff.ts A B` says what grew between two.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { machine, percentile, startServerProcess } from "./common.js";

const TURNS = Number(process.argv[2] ?? 1000);
const WINDOW = Number(process.argv[3] ?? 100);
const PER_LOOP = 50;
const TEXT = "The module graph was read again and nothing changed in the part that matters here; ".repeat(7);

const ticks = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime, 10 ms ticks
};

let turns = 0;
let summaries = 0;
let lastEnd = 0;
const gaps: number[] = [];
const sse = (chunks: object[]) =>
  `${chunks.map((c) => `data: ${JSON.stringify({ id: "b", object: "chat.completion.chunk", ...c })}\n\n`).join("")}data: [DONE]\n\n`;
let onTurn: (n: number) => void = () => {};

const model = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/v1/models") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data: [{ id: "bench-model", max_model_len: 32_768 }] }));
    return;
  }
  let body = "";
  req.on("data", (d) => (body += d));
  req.on("end", () => {
    const request = JSON.parse(body) as { tools: unknown[] };
    const start = Date.now();
    if (lastEnd) gaps.push(start - lastEnd);
    res.writeHead(200, { "content-type": "text/event-stream" });
    const usage = { choices: [], usage: { prompt_tokens: Math.ceil(body.length / 4), completion_tokens: 150, total_tokens: Math.ceil(body.length / 4) + 150 } };
    if (request.tools.length === 0) {
      summaries++;
      res.end(
        sse([{ choices: [{ index: 0, delta: { content: `Summary ${summaries}: the agent re-read the module graph.` }, finish_reason: "stop" }] }, usage]),
      );
    } else {
      turns++;
      const call =
        turns % PER_LOOP === 0
          ? { index: 0, id: `d${turns}`, type: "function", function: { name: "done", arguments: '{"summary":"loop done"}' } }
          : { index: 0, id: `g${turns}`, type: "function", function: { name: "get", arguments: `{"path":"sh://turn_${turns}/x"}` } };
      res.end(
        sse([
          { choices: [{ index: 0, delta: { content: `Turn ${turns}. ${TEXT}` }, finish_reason: null }] },
          { choices: [{ index: 0, delta: { tool_calls: [call] }, finish_reason: "tool_calls" }] },
          usage,
        ]),
      );
      onTurn(turns);
    }
    lastEnd = Date.now();
  });
});
await new Promise<void>((resolve) => model.listen(0, "127.0.0.1", () => resolve()));
const baseUrl = `http://127.0.0.1:${(model.address() as AddressInfo).port}/v1`;

/**
 * A preload in the server (NODE_OPTIONS --require): on SIGUSR2 it does what the request file says — `mem`: its
 * memory (RSS, V8's heap in use, memory outside it, glibc's heap: what malloc holds, SQLite's caches and every
 * native buffer, all threads' as one arena), written to the answer file; `gc`: the same after a full collection
 * (asked once, at the end: a collection forced every window would hide what the heap keeps until V8 collects);
 * `heap`: a heap snapshot into SPOOL_BENCH_HEAP_DIR, its path written there.
 */
const HEAP_AT = new Set((process.env.SPOOL_BENCH_HEAP_AT ?? "").split(",").filter(Boolean).map(Number));
const HEAP_DIR = process.env.SPOOL_BENCH_HEAP_DIR ?? process.cwd();
const probe = join(tmpdir(), `spool-bench-turns-${process.pid}`);
writeFileSync(
  `${probe}.cjs`,
  `if (require("node:worker_threads").isMainThread) {
  const { readFileSync, writeFileSync } = require("node:fs");
  require("node:v8").setFlagsFromString("--expose-gc");
  const gc = require("node:vm").runInNewContext("gc");
  const mallocKb = () => Number(/^[0-9a-f]+-[0-9a-f]+ [^\\n]*\\[heap\\]\\n(?:.*\\n)*?Rss:\\s+(\\d+)/m.exec(readFileSync("/proc/self/smaps", "utf8"))?.[1] ?? 0);
  const mem = () => { const m = process.memoryUsage(); return { rss: m.rss, heap: m.heapUsed, external: m.external, malloc: mallocKb() * 1024 }; };
  process.on("SIGUSR2", () => {
    const ask = readFileSync(${JSON.stringify(`${probe}.ask`)}, "utf8");
    let answer;
    if (ask === "heap") answer = require("node:v8").writeHeapSnapshot(require("node:path").join(${JSON.stringify(HEAP_DIR)}, \`turns-\${Date.now()}.heapsnapshot\`));
    else if (ask === "gc") { gc(); answer = JSON.stringify(mem()); }
    else answer = JSON.stringify(mem());
    writeFileSync(${JSON.stringify(`${probe}.answer`)}, answer);
  });
}
`,
);
type Memory = Record<"rss" | "heap" | "external" | "malloc", number>;
const mb = (bytes: number, width: number) => (bytes / 2 ** 20).toFixed(1).padStart(width);
/** Asks the server's preload and waits for its answer. */
const ask = async (what: "mem" | "gc" | "heap"): Promise<string> => {
  rmSync(`${probe}.answer`, { force: true });
  writeFileSync(`${probe}.ask`, what);
  process.kill(server.pid, "SIGUSR2");
  for (;;) {
    if (existsSync(`${probe}.answer`)) {
      const answer = readFileSync(`${probe}.answer`, "utf8");
      if (answer) return answer;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
};
const server = await startServerProcess({
  SPOOL_MODEL_BENCH: "openai/bench-model",
  OPENAI_BASE_URL: baseUrl,
  NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${probe}.cjs`.trim(),
});
const client = await server.connect();
await client.initialize("bench-agent", { root: server.root });
console.log(`machine: ${machine()}; ${TURNS} turns in loops of ${PER_LOOP}, window ${WINDOW}; server ${process.env.SPOOL_BENCH_BIN ?? "this tree"}`);
console.log("turns        cpu ms/turn   rss MB  heap MB  other MB  malloc MB   gap p50/p99 ms   summaries");
let mark = { turns: 0, ticks: ticks(server.pid), gaps: 0 };
const windowDone = new Promise<void>((resolve) => {
  onTurn = (n) => {
    if (n % WINDOW !== 0 && n !== TURNS) return;
    // Read after the answer is out: the server's work for these turns is done by the next request.
    setImmediate(async () => {
      const now = ticks(server.pid);
      const windowGaps = gaps.slice(mark.gaps).sort((a, b) => a - b);
      const cpu = ((now - mark.ticks) * 10) / (n - mark.turns);
      const from = mark.turns + 1;
      mark = { turns: n, ticks: now, gaps: gaps.length };
      const m = JSON.parse(await ask("mem")) as Memory;
      console.log(
        `${String(from).padStart(5)}-${String(n).padEnd(6)} ${cpu.toFixed(2).padStart(10)} ${mb(m.rss, 8)} ${mb(m.heap, 8)} ${mb(m.external, 9)} ${mb(m.malloc, 10)} ${`${percentile(windowGaps, 50)}/${percentile(windowGaps, 99)}`.padStart(16)} ${String(summaries).padStart(11)}`,
      );
      if (HEAP_AT.has(n)) console.log(`  heap snapshot at turn ${n}: ${await ask("heap")}`);
      if (n < TURNS) return;
      const g = JSON.parse(await ask("gc")) as Memory;
      console.log(`after a full collection    ${mb(g.rss, 8)} ${mb(g.heap, 8)} ${mb(g.external, 9)} ${mb(g.malloc, 10)}`);
      resolve();
    });
  };
});
await client.call("run/create", { alias: "long", model: "bench" });
for (let i = 0; i < Math.ceil(TURNS / PER_LOOP); i++) await client.call("run/prompt", { run: "long", prompt: `Loop ${i + 1}: read the graph again` });
await windowDone;
client.close();
await server.stop();
model.close();
for (const end of [".cjs", ".ask", ".answer"]) rmSync(`${probe}${end}`, { force: true });
