// What the RPC layer alone costs a stream chunk: a tree's RpcHost (dist/ built) with the `stream` method, over a
// transport that writes nothing, fed binary frames of one 512-byte line for 200 channels, 8 a turn; the handler's
// lifecycle is a stand-in that answers every chunk of a turn in one batch (as a group commit does). Each tree runs in
// its own node process with 128 MiB semi-spaces, so no collection falls in the measured round: prints the heap
// allocated a call (V8's heapUsed before and after) and the CPU time a call. A B A B over SPOOL_BENCH_TREES.
// Usage: [SPOOL_BENCH_TREES="before=/tmp/old,after=/work/main"] npx tsx bench/rpc-call.ts [calls=8000] [rounds=2]
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CALLS = Number(process.argv[2] ?? 8000);
const ROUNDS = Number(process.argv[3] ?? 2);
const here = fileURLToPath(new URL("..", import.meta.url));
const trees = (process.env.SPOOL_BENCH_TREES ?? `this=${here}`).split(",").map((t) => t.split("=") as [string, string]);

/** The measuring program, run by node in a process of its own per tree (plain JavaScript over the tree's dist/). */
const program = (tree: string) => `
import { RpcHost } from "${tree}/dist/rpc/rpc-host.js";
import { encodeBinaryFrame } from "${tree}/dist/protocol/binary-frame.js";
import { stream } from "${tree}/dist/features/stream/stream.js";
const N = ${CALLS};
const log = { warn() {}, error(...a) { console.error(...a); }, info() {}, debug() {} };
let pending = [];
const flush = () => { const p = pending; pending = []; for (const r of p) r(); };
const append = (connection, project, params, queued) => new Promise((resolve) => {
  queued?.();
  if (pending.length === 0) setImmediate(flush);
  pending.push(() => resolve({ channel: params.channel, seq: params.seq ?? 1, bytes: 512, duplicate: false }));
});
const core = { config: { limits: { maxChunkBytes: 1 << 20 } }, lifecycle: { append } };
const host = new RpcHost(log, { connectionOpened() {}, connectionClosed() {}, context: () => ({ core, services: {} }) });
host.registry.methods.set("stream", { ...stream, name: "stream" });
host.install();
let binary;
let sent = 0;
const transport = {
  send(text, flushed) { sent++; flushed?.(); },
  sendUtf8(data, flushed) { sent++; flushed?.(); },
  close() {}, onMessage() {}, onClose() {}, onBinary(listener) { binary = listener; },
  bufferedAmount: () => 0, pause() {}, resume() {},
};
host.accept(transport).join({ id: 1, name: "bench" }, null);
const line = Buffer.from("x".repeat(511) + "\\n");
const frames = Array.from({ length: N }, (_, i) =>
  Buffer.from(encodeBinaryFrame({ jsonrpc: "2.0", id: i, method: "stream", params: { run: "load", path: "log://turn_1/sh/producer-" + (i % 200), channel: 1, seq: Math.floor(i / 200) + 1 } }, line)));
const turn = () => new Promise((resolve) => setImmediate(resolve));
async function round() {
  const before = sent;
  for (let i = 0; i < N; i += 8) {
    for (let j = i; j < i + 8 && j < N; j++) binary(frames[j]);
    await turn();
  }
  while (sent - before < N) await turn();
}
for (let warm = 0; warm < 5; warm++) await round();
const heap = process.memoryUsage().heapUsed;
const cpu = process.cpuUsage();
await round();
const used = process.cpuUsage(cpu);
console.log(JSON.stringify({ bytes: (process.memoryUsage().heapUsed - heap) / N, us: (used.user + used.system) / N }));
`;

console.log(`${CALLS} stream calls a round, 8 a turn, over 200 channels; load average ${loadavg()[0]!.toFixed(2)} at the start`);
console.log("round     load   heap B/call   CPU µs/call");
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, tree] of trees) {
    const file = join(tmpdir(), `spool-rpc-call-${process.pid}-${name}.mjs`);
    writeFileSync(file, program(tree));
    const out = execFileSync(process.execPath, ["--max-semi-space-size=128", "--min-semi-space-size=128", file], { encoding: "utf8" });
    const { bytes, us } = JSON.parse(out.trim().split("\n").at(-1)!) as { bytes: number; us: number };
    console.log(`${name.padEnd(8)} ${loadavg()[0]!.toFixed(2).padStart(5)}   ${bytes.toFixed(0).padStart(11)}   ${us.toFixed(2).padStart(11)}`);
  }
}
