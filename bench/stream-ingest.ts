// Streams 1 MB, 16 MB, 256 MB and 1 GB into one channel in 64 KiB chunks over
// loopback WebSocket and prints throughput and the per-chunk latency (call →
// acknowledgement) of the first and last 10% of chunks. Like a runner, the
// producer keeps up to WINDOW unacknowledged chunks in flight and, like a runner, sends each chunk as raw bytes
// in a binary frame when the server advertises them (else as JSON text); `json` as the third argument sends
// JSON text whatever the server takes.
// Usage: npx tsx bench/stream-ingest.ts [sizes in MB, comma-separated] [window] [json]
import { machine, percentile, startServerProcess } from "./common.js";

const CHUNK = 64 * 1024;
const sizesMb = (process.argv[2] ?? "1,16,256,1024").split(",").map(Number);
const WINDOW = Number(process.argv[3] ?? 4);
const JSON_TEXT = process.argv[4] === "json";

function chunkText(i: number): string {
  // Printable, newline-terminated lines; each chunk differs so nothing is trivially deduplicated.
  const line = `chunk ${String(i).padStart(10, "0")} ${"abcdefghijklmnopqrstuvwxyz".repeat(2)}\n`;
  return `${line.repeat(Math.ceil(CHUNK / line.length)).slice(0, CHUNK - 1)}\n`;
}

const server = await startServerProcess();
console.log(`machine: ${machine()}`);
try {
  const client = await server.connect();
  await client.initialize("bench", { root: server.root });
  const binary = client.bytes && !JSON_TEXT;
  console.log(`chunk: ${CHUNK} bytes, ${binary ? "raw bytes in binary frames" : "utf8 JSON text"}, up to ${WINDOW} unacknowledged chunk(s) in flight`);
  console.log("size_mb  MB/s    first10%_p50_ms  first10%_p99_ms  last10%_p50_ms  last10%_p99_ms  last/first(p50)");
  for (const [index, mb] of sizesMb.entries()) {
    const run = `ingest-${index}`;
    await client.request("run/create", { alias: run });
    const { path } = await client.request("proposal/create", { run, tool: "sh", command: `produce ${mb} MB`, sandbox: "full" });
    await client.request("run/resolve", { run, path, decision: "accept", runner: "self" });
    const chunks = Math.round((mb * 1024 * 1024) / CHUNK);
    const latencies = new Float64Array(chunks);
    const start = performance.now();
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < chunks; i++) {
      const t = performance.now();
      const text = chunkText(i);
      const call: Promise<void> = client.request("stream", { run, path, channel: 1, chunk: binary ? Buffer.from(text) : text, seq: i + 1 }).then(() => {
        latencies[i] = performance.now() - t;
        inFlight.delete(call);
      });
      inFlight.add(call);
      if (inFlight.size >= WINDOW) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const seconds = (performance.now() - start) / 1000;
    await client.request("stream/completed", { run, path, exit_code: 0 });
    const tenth = Math.max(1, Math.floor(chunks / 10));
    const first = Array.from(latencies.subarray(0, tenth)).sort((a, b) => a - b);
    const last = Array.from(latencies.subarray(chunks - tenth)).sort((a, b) => a - b);
    const f50 = percentile(first, 50);
    const l50 = percentile(last, 50);
    console.log(
      [
        String(mb).padEnd(7),
        ((chunks * CHUNK) / 2 ** 20 / seconds).toFixed(1).padEnd(7),
        f50.toFixed(3).padEnd(16),
        percentile(first, 99).toFixed(3).padEnd(16),
        l50.toFixed(3).padEnd(15),
        percentile(last, 99).toFixed(3).padEnd(15),
        (l50 / f50).toFixed(2),
      ].join("  "),
    );
  }
  // A tail and a slice on the largest channel: counters, not a scan.
  const run = `ingest-${sizesMb.length - 1}`;
  const { entries } = await client.request("entry/list", { run, pattern: "sh://*_1" });
  const target = entries[0].path;
  for (const [label, params] of [
    ["tail 20 lines", { tail: 20 }],
    ["slice of 20 lines from the middle", { line: Math.floor(entries[0].lines / 2), limit: 20 }],
  ] as const) {
    const t = performance.now();
    await client.request("entry/get", { run, path: target, ...params });
    console.log(`${label} on ${(entries[0].bytes / 2 ** 20).toFixed(0)} MB: ${(performance.now() - t).toFixed(2)} ms`);
  }
  client.close();
} finally {
  await server.stop();
}
