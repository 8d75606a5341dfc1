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
import { rpcCallProgram } from "./rpc-call-program.js";

const CALLS = Number(process.argv[2] ?? 8000);
const ROUNDS = Number(process.argv[3] ?? 2);
const here = fileURLToPath(new URL("..", import.meta.url));
const trees = (process.env.SPOOL_BENCH_TREES ?? `this=${here}`).split(",").map((t) => t.split("=") as [string, string]);

console.log(`${CALLS} stream calls a round, 8 a turn, over 200 channels; load average ${loadavg()[0]!.toFixed(2)} at the start`);
console.log("round     load   heap B/call   CPU µs/call");
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, tree] of trees) {
    const file = join(tmpdir(), `spool-rpc-call-${process.pid}-${name}.mjs`);
    writeFileSync(file, rpcCallProgram(`${tree}/dist`, "js", CALLS));
    const out = execFileSync(process.execPath, ["--max-semi-space-size=128", "--min-semi-space-size=128", file], { encoding: "utf8" });
    const { bytes, us } = JSON.parse(out.trim().split("\n").at(-1)!) as { bytes: number; us: number };
    console.log(`${name.padEnd(8)} ${loadavg()[0]!.toFixed(2).padStart(5)}   ${bytes.toFixed(0).padStart(11)}   ${us.toFixed(2).padStart(11)}`);
  }
}
