// Preload for bench/budget.ts (`node --require`): names the process's threads so /proc/PID/task/*/comm tells
// them apart. Threads present when it runs (V8's platform workers: GC helpers, compiler jobs) become
// `v8-platform`; each worker_threads Worker's thread is named when it is constructed (the threads that appear
// during the constructor): `ckpt` for the checkpoint worker (its source runs wal_checkpoint, or its file is checkpoint-worker.js), else `worker`.
// Threads started later and not named here (libuv's pool, Node's own helpers) keep `node`.
const { readdirSync, writeFileSync } = require("node:fs");
const worker_threads = require("node:worker_threads");
const tasks = () => new Set(readdirSync("/proc/self/task"));
const name = (tid, n) => {
  try {
    writeFileSync(`/proc/self/task/${tid}/comm`, n);
  } catch {}
};
// Workers run the preloads too (execArgv is inherited): only the main thread names threads.
if (worker_threads.isMainThread) {
  for (const tid of tasks()) if (tid !== String(process.pid)) name(tid, "v8-platform");
  const Base = worker_threads.Worker;
  worker_threads.Worker = class extends Base {
    constructor(source, options) {
      const before = tasks();
      super(source, options);
      // Its source (evaluated, in older trees) runs wal_checkpoint; its file (checkpoint-worker.ts since issue 49, in src/store/sqlite/ now) is named so.
      const n = /wal_checkpoint|checkpoint-worker\.[jt]s$/.test(String(source)) ? "ckpt" : "worker";
      for (const tid of tasks()) if (!before.has(tid)) name(tid, n);
    }
  };
  // ES modules' `import { Worker } from "node:worker_threads"` sees the class only after this.
  require("node:module").syncBuiltinESMExports();
}

// SPOOL_BENCH_ELU_FILE: on SIGUSR2 the main thread writes its event loop's idle and active milliseconds since
// start (performance.eventLoopUtilization) and a count, so a bench can tell the loop waiting for input (idle)
// from the loop running or blocked in a synchronous call (active).
if (worker_threads.isMainThread && process.env.SPOOL_BENCH_ELU_FILE) {
  const { performance } = require("node:perf_hooks");
  const file = process.env.SPOOL_BENCH_ELU_FILE;
  let n = 0;
  process.on("SIGUSR2", () => {
    const { idle, active } = performance.eventLoopUtilization();
    writeFileSync(file, `${++n} ${idle} ${active}\n`);
  });
}
