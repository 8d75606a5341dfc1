// What creating a proposal costs, and whether notifications change it (issue 46): a fresh `spool serve` per tree
// and round (A B A B), `clients` clients (default 1) creating `count` proposals between them, each one after another
// (each waits for its answer), after 50 to warm up. Per tree and round: call → answer ms p50/p90/p99 and the server's CPU ms per proposal, all threads
// (/proc/PID/task/*/schedstat, before and after).
//
// SPOOL_BENCH_TREES="main=/work/main,outbox=/work/wt/outbox?notify=down" as for compare.ts (each tree's
// bin/spool.js as the server); the query's `notify` is not an environment variable: `down` adds 4 receivers
// (every event) at a port nothing listens on, `slow` 4 at a local server that takes connections and never
// answers (each delivery waits out its time limit). Proposals stay pending, so with receivers every proposal
// queues 4 deliveries whose attempts fail and are retried while the bench goes on.
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { SpoolClient } from "../src/client/spool-client.js";
import { benchTrees, binLaunch, machine, percentile, startServerProcess } from "./common.js";

const count = Number(process.argv[2] ?? 500);
const rounds = Number(process.argv[3] ?? 2);
/** Clients proposing at once (each its own connection, count / clients proposals one after another): a burst. */
const clients = Math.max(1, Number(process.argv[4] ?? 1));

const asAgent = process.env.SPOOL_BENCH_AS === "agent";

const PRELOAD = fileURLToPath(new URL("./thread-names.cjs", import.meta.url));

/** CPU ns of every thread of `pid` so far, by thread: `main`, `ckpt` (the checkpoint worker) and the rest (`other`). */
function cpuNs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
      const comm = task === String(pid) ? "main" : readFileSync(`/proc/${pid}/task/${task}/comm`, "utf8").trim();
      const name = comm === "main" || comm === "ckpt" ? comm : "other";
      out.set(`${name} ${task}`, ns);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** ms a proposal, by thread name, between two readings (a thread that started meanwhile counts from 0). */
function perProposal(before: Map<string, number>, after: Map<string, number>, n: number): Record<"all" | "main" | "ckpt" | "other", number> {
  const out = { all: 0, main: 0, ckpt: 0, other: 0 };
  for (const [key, ns] of after) {
    const ms = (ns - (before.get(key) ?? 0)) / 1e6 / n;
    out[key.split(" ")[0] as "main" | "ckpt" | "other"] += ms;
    out.all += ms;
  }
  return out;
}

/** A TCP port nothing listens on (`down`), or one that takes connections and never answers (`slow`). */
async function receiverPort(kind: string): Promise<{ port: number; close: () => void }> {
  const server: Server = createServer((socket) => socket.on("error", () => undefined));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  if (kind === "slow") return { port, close: () => server.close() };
  await new Promise<void>((r) => server.close(() => r()));
  return { port, close: () => undefined };
}

// `?notify=down|slow` names the receivers a tree gets; the rest of the query is its environment.
const trees = benchTrees().map(({ label, bin, env: { notify, ...env } }) => ({ label, bin, env, notify }));

console.log(`${machine()}; ${count} proposals a round from ${clients} client${clients === 1 ? "" : "s"} at once`);
console.log("tree      round  load  p50 ms  p90 ms  p99 ms  server CPU ms/proposal: all = main + ckpt + other");
for (let round = 1; round <= rounds; round++) {
  for (const tree of trees.length ? trees : [{ label: "this", bin: undefined, env: {}, notify: undefined }]) {
    // Its threads named (bench/thread-names.cjs), after the node options its bin's shebang gives.
    const bin = tree.bin ?? fileURLToPath(new URL("../bin/spool.js", import.meta.url));
    const launch = binLaunch(bin, tree.env);
    const server = await startServerProcess({
      ...launch.env,
      ...tree.env,
      SPOOL_BENCH_BIN: bin,
      SPOOL_BENCH_NODE_ARGS: [...launch.args, "--require", PRELOAD].join(" "),
    });
    const receiver = tree.notify ? await receiverPort(tree.notify) : null;
    try {
      const client = await server.connect();
      await client.initialize("bench", { root: server.root });
      if (receiver) {
        for (let i = 0; i < 4; i++) await client.call("notify/add" as never, { name: `r${i}`, url: `http://127.0.0.1:${receiver.port}/hook` } as never);
      }
      // SPOOL_BENCH_AS=agent: the proposals are an agent principal's (held to the per-principal bounds; run with
      // SPOOL_BENCH_LIMITS=high on a tree that has them), not the home credential's.
      const token = asAgent ? (await client.call("token/create", { name: "bench-agent", role: "agent" })).token : null;
      const proposer = async () => {
        if (!token) return server.connect();
        const c = await SpoolClient.connect(server.url, { token });
        await c.initialize("bench");
        return c;
      };
      const first = token ? await proposer() : client;
      await first.call("run/create", { alias: "bench" });
      for (let i = 0; i < 50; i++) await first.call("proposal/create", { run: "bench", tool: "sh", command: `echo warm ${i}` });
      const others = await Promise.all(
        Array.from({ length: clients - 1 }, async () => {
          const other = await proposer();
          if (!token) await other.initialize("bench", { root: server.root });
          return other;
        }),
      );
      const times: number[] = [];
      const load = loadavg()[0]!;
      const before = cpuNs(server.pid);
      const each = Math.ceil(count / clients);
      await Promise.all(
        [first, ...others].map(async (c, k) => {
          for (let i = k * each; i < Math.min(count, (k + 1) * each); i++) {
            const started = performance.now();
            await c.call("proposal/create", { run: "bench", tool: "sh", command: `echo proposal ${i}`, env: { N: String(i) } });
            times.push(performance.now() - started);
          }
        }),
      );
      const cpu = perProposal(before, cpuNs(server.pid), count);
      for (const other of others) other.close();
      if (first !== client) first.close();
      times.sort((a, b) => a - b);
      const f = (n: number) => n.toFixed(2).padStart(6);
      console.log(
        `${`${tree.label}${tree.notify ? `+${tree.notify}` : ""}`.padEnd(10)}${String(round).padStart(5)}  ${load.toFixed(1).padStart(4)}  ${f(percentile(times, 50))}  ${f(percentile(times, 90))}  ${f(percentile(times, 99))}  ${cpu.all.toFixed(3).padStart(8)} = ${cpu.main.toFixed(3)} + ${cpu.ckpt.toFixed(3)} + ${cpu.other.toFixed(3)}`,
      );
      client.close();
    } finally {
      receiver?.close();
      await server.stop();
    }
  }
}
