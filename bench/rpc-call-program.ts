/**
 * The measuring program of bench/rpc-call.ts, run by node in a process of its own (with 128 MiB semi-spaces, so no
 * collection falls in the measured round): plain JavaScript over a tree's dist/ (`ext` js), or over src/ run with
 * tsx (`ext` ts: test/rpc/call-heap.test.ts, the guard of the per-call allocations). Prints one JSON line: the heap
 * allocated a call and the CPU µs a call.
 */
export const rpcCallProgram = (base: string, ext: "js" | "ts", calls: number) => `
import { RpcHost } from "${base}/rpc/rpc-host.${ext}";
import { encodeBinaryFrame } from "${base}/protocol/binary-frame.${ext}";
import { stream } from "${base}/features/stream/stream.${ext}";
const N = ${calls};
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
globalThis.gc?.();
const heap = process.memoryUsage().heapUsed;
const cpu = process.cpuUsage();
await round();
const used = process.cpuUsage(cpu);
console.log(JSON.stringify({ bytes: (process.memoryUsage().heapUsed - heap) / N, us: (used.user + used.system) / N }));
`;
