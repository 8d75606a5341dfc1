/**
 * A long agent run against a stand-in model that answers at once: per window of turns, the server's CPU a turn and
 * its RSS, and the agent's added latency a turn (from the end of one answer to the next request). The stand-in is a
 * chat-completions server in this process; it says a 32k window in its model list (vLLM's max_model_len), calls
 * `get` (no approval) with a ~600-character reply every turn and `done` every 50th (a loop's step limit), and
 * answers a summary request (no tools) with a short summary. Turns are queued as loops of 50 (run/prompt).
 *
 *   npx tsx bench/agent-turns.ts [turns] [window]          (SPOOL_BENCH_BIN=/other/tree/bin/spool.js: another tree)
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { machine, percentile, startServerProcess } from "./common.js";

const TURNS = Number(process.argv[2] ?? 1000);
const WINDOW = Number(process.argv[3] ?? 100);
const PER_LOOP = 50;
const TEXT = "The module graph was read again and nothing changed in the part that matters here; ".repeat(7);

const ticks = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime, 10 ms ticks
};
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

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

const server = await startServerProcess({ SPOOL_MODEL_BENCH: "openai/bench-model", OPENAI_BASE_URL: baseUrl });
const client = await server.connect();
await client.initialize("bench-agent", { root: server.root });
console.log(`machine: ${machine()}; ${TURNS} turns in loops of ${PER_LOOP}, window ${WINDOW}; server ${process.env.SPOOL_BENCH_BIN ?? "this tree"}`);
console.log("turns        cpu ms/turn   rss MB   gap p50/p99 ms   summaries");
let mark = { turns: 0, ticks: ticks(server.pid), gaps: 0 };
const windowDone = new Promise<void>((resolve) => {
  onTurn = (n) => {
    if (n % WINDOW !== 0 && n !== TURNS) return;
    // Read after the answer is out: the server's work for these turns is done by the next request.
    setImmediate(() => {
      const now = ticks(server.pid);
      const windowGaps = gaps.slice(mark.gaps).sort((a, b) => a - b);
      const cpu = ((now - mark.ticks) * 10) / (n - mark.turns);
      console.log(
        `${String(mark.turns + 1).padStart(5)}-${String(n).padEnd(6)} ${cpu.toFixed(2).padStart(10)} ${rssMb(server.pid).toFixed(1).padStart(8)} ${`${percentile(windowGaps, 50)}/${percentile(windowGaps, 99)}`.padStart(16)} ${String(summaries).padStart(11)}`,
      );
      mark = { turns: n, ticks: now, gaps: gaps.length };
      if (n >= TURNS) resolve();
    });
  };
});
await client.call("run/create", { alias: "long", model: "bench" });
for (let i = 0; i < Math.ceil(TURNS / PER_LOOP); i++) await client.call("run/prompt", { run: "long", prompt: `Loop ${i + 1}: read the graph again` });
await windowDone;
client.close();
await server.stop();
model.close();
