// The runner's read side alone: a local process's output through a tree's LocalBackend (OutputPipe) and ChannelSender,
// over a link that answers every `stream` call at once (in an immediate), no server and no store. Prints this process's
// CPU s per GB (user and kernel), the chunks sent, and V8's major GCs (mark-compacts), per tree, A B A B: what the
// runner costs on the embedded runner's path (bench/compare.ts `embedded` measures the whole server with SQLite).
// Usage: SPOOL_BENCH_TREES="base=/tmp/old,new=/tmp/wt" npx tsx bench/runner-read.ts [MB per run, default 1024] [rounds, default 3]
// Each run is its own `node` process importing the tree's dist/ (build it first), with the node flags and environment
// the tree's bin/spool.js gives `spool serve` in its shebang (`--max-semi-space-size=2`, malloc's settings; as compare.ts's
// servers run; SPOOL_BENCH_NODE_ARGS replaces them): V8's young generation and heap limits decide how often it
// marks the whole heap, so a process with the default 16 MiB semi-spaces counts GCs the server does not have
// (bench/history/README.md, issue 24 session 6, "the embedded runner's GC"). The command is compare.ts's:
// `yes 'spool runner throughput line of text' | head -c BYTES`.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { constants, PerformanceObserver } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { binLaunch, machine } from "./common.js";

interface Run {
  bytes: number;
  chunks: number;
  cpuPerGb: number;
  kernelPerGb: number;
  majorGcs: number;
}

async function child(root: string, mb: number): Promise<Run> {
  // dist/runners/local/ and client/ since the runners have folders; dist/runners/ in older trees.
  const built = (...files: string[]) => pathToFileURL(files.map((file) => join(root, file)).find((file) => existsSync(file))!).href;
  const { LocalBackend } = await import(built("dist/runners/local/local.js", "dist/runners/local.js"));
  const { ChannelSender, Slots } = await import(built("dist/runners/client/channel-sender.js", "dist/runners/channel-sender.js"));
  const bytes = mb * 2 ** 20;
  const slots = new Slots(64);
  let chunks = 0;
  const client = {
    bytes: true,
    request: () => {
      chunks++;
      return new Promise((resolve) => setImmediate(() => resolve({})));
    },
  };
  const link = { current: () => client, tryAcquire: () => slots.tryAcquire(), release: () => slots.release(), whenFree: (g: () => void) => slots.whenFree(g) };
  let majorGcs = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorGcs++;
  }).observe({ entryTypes: ["gc"] });
  const backend = new LocalBackend({ sandbox: "off" });
  const cpu0 = process.cpuUsage();
  const execution = await backend.start({
    command: `yes 'spool runner throughput line of text' | head -c ${bytes}`,
    env: {},
    signal: new AbortController().signal,
  });
  let got = 0;
  const drain = async (stream: NodeJS.ReadableStream & { pause(): void; resume(): void }, channel: number) => {
    const sender = new ChannelSender(
      link,
      { run: "r", path: "p", channel },
      { window: 8, maxChunkBytes: 64 * 1024, highWaterBytes: 256 * 1024, onRefused() {} },
    );
    stream.on("data", (chunk: Buffer) => {
      got += chunk.length;
      const room = sender.push(chunk);
      if (room) {
        stream.pause();
        void room.then(() => stream.resume());
      }
    });
    await new Promise((resolve) => stream.once("end", resolve));
    await sender.end();
  };
  await Promise.all([drain(execution.stdout, 1), drain(execution.stderr, 2)]);
  await execution.result;
  const cpu = process.cpuUsage(cpu0);
  await new Promise((resolve) => setImmediate(resolve));
  const gb = got / 2 ** 30;
  return { bytes: got, chunks, cpuPerGb: (cpu.user + cpu.system) / 1e6 / gb, kernelPerGb: cpu.system / 1e6 / gb, majorGcs };
}

if (process.env.SPOOL_BENCH_RUNNER_READ_CHILD) {
  const run = await child(process.env.SPOOL_BENCH_RUNNER_READ_CHILD, Number(process.argv[2]));
  process.stdout.write(`${JSON.stringify(run)}\n`);
  process.exit(0);
}

const mb = Number(process.argv[2] ?? 1024);
const rounds = Number(process.argv[3] ?? 3);
const trees = (process.env.SPOOL_BENCH_TREES ?? `this=${new URL("..", import.meta.url).pathname}`).split(",").map((t) => {
  const at = t.indexOf("=");
  return { label: t.slice(0, at), root: t.slice(at + 1).replace(/\/$/, "") };
});
console.log(`machine: ${machine()}`);
console.log(`${mb} MB a run; columns: CPU s per GB (kernel), chunks sent, major GCs`);
for (const tree of trees) {
  const launch = binLaunch(`${tree.root}/bin/spool.js`);
  const vars = Object.entries(launch.env).map(([k, v]) => `${k}=${v}`);
  console.log(`${tree.label}: node ${[...launch.args, ...vars].join(" ") || "(no flags)"}`);
}
for (let round = 1; round <= rounds; round++) {
  for (const tree of trees) {
    const load = loadavg()
      .map((l) => l.toFixed(2))
      .join(" ");
    const launch = binLaunch(`${tree.root}/bin/spool.js`);
    const out = spawnSync(process.execPath, [...process.execArgv, ...launch.args, new URL(import.meta.url).pathname, String(mb)], {
      env: { ...process.env, ...launch.env, SPOOL_BENCH_RUNNER_READ_CHILD: tree.root },
      encoding: "utf8",
    });
    const line = out.stdout.trim().split("\n").pop() ?? "";
    if (out.status !== 0 || !line.startsWith("{")) throw new Error(`${tree.label}: ${out.stderr || out.stdout}`);
    const run = JSON.parse(line) as Run;
    console.log(
      `${tree.label.padEnd(8)} round ${round}  load ${load}  ${run.cpuPerGb.toFixed(2)} s/GB (kernel ${run.kernelPerGb.toFixed(2)})  ${run.chunks} chunks  ${run.majorGcs} major GCs`,
    );
  }
}
