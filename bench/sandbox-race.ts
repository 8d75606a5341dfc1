// A sandboxed command's start while other Spool homes come and go: `starts` sandboxed `echo hi` (workspace-write, no
// network) on the local backend, one after another, while `churners` processes each record a home in a fresh registry
// (SPOOL_REGISTRY) under `parent` and remove it again (0-3 ms later), as test servers and removed homes do. Every
// sandbox reads the registry as a check (a recorded home in its view refuses the command); nothing is mounted over
// the recorded paths (before issue 73 each was covered, and one removed before bubblewrap's mount failed the start).
// Usage: npx tsx bench/sandbox-race.ts [starts] [parent] [churners]   (default 200 /var/tmp 2)
// Prints one JSON line: the starts that did not print "hi", and each distinct stderr and exit code among them.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const starts = Number(process.argv[2] ?? 200);
const parent = process.argv[3] ?? "/var/tmp";
const churners = Number(process.argv[4] ?? 2);
const scratch = mkdtempSync("/tmp/spool-bench-race-");
process.env.SPOOL_REGISTRY = join(scratch, "registry");

// A churner: this file run again with SPOOL_BENCH_CHURN set records homes and removes them until the stop file exists.
if (process.env.SPOOL_BENCH_CHURN) {
  const { recordStatePaths } = await import("../src/home/registry.js");
  const stop = process.env.SPOOL_BENCH_CHURN;
  process.env.SPOOL_REGISTRY = process.env.SPOOL_BENCH_REGISTRY;
  while (!existsSync(stop)) {
    const home = mkdtempSync(join(parent, "spool-bench-race-home-"));
    writeFileSync(join(home, "token"), "x\n");
    recordStatePaths([home, join(home, "token")]);
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
    rmSync(home, { recursive: true, force: true });
  }
  rmSync(scratch, { recursive: true, force: true });
  process.exit(0);
}

/** All of a stream, as text. */
async function text(stream: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

const stop = join(scratch, "stop");
const children = Array.from({ length: churners }, () =>
  spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, SPOOL_BENCH_CHURN: stop, SPOOL_BENCH_REGISTRY: process.env.SPOOL_REGISTRY },
  }),
);
const { LocalBackend } = await import("../src/runners/local/local.js");
const backend = new LocalBackend({ killGraceMs: 500 });
const workspace = realpathSync(mkdtempSync("/var/tmp/spool-bench-race-ws-"));
mkdirSync(join(scratch, "registry"), { recursive: true });
let failed = 0;
const why = new Map<string, number>();
for (let i = 0; i < starts; i++) {
  const said = await backend
    .start({
      command: "echo hi",
      cwd: workspace,
      workspace,
      env: {},
      sandbox: { mode: "workspace-write", network: false },
      timeoutMs: 10_000,
      signal: new AbortController().signal,
    })
    .then(async (execution) => {
      const [out, err, { exitCode }] = await Promise.all([text(execution.stdout), text(execution.stderr), execution.result]);
      return out === "hi\n" ? null : `${err.trim()} (exit ${exitCode})`;
    })
    // A sandbox that could not be set up is the start's failure (runners/sandbox/setup.ts).
    .catch((error: Error) => `start: ${error.message}`);
  if (said === null) continue;
  failed++;
  const key = said.replace(/spool-bench-race-home-\w+/g, "spool-bench-race-home-*");
  why.set(key, (why.get(key) ?? 0) + 1);
}
writeFileSync(stop, "");
await Promise.all(children.map((child) => new Promise((resolve) => child.once("exit", resolve))));
await backend.close();
rmSync(workspace, { recursive: true, force: true });
rmSync(scratch, { recursive: true, force: true });
console.log(JSON.stringify({ starts, parent, churners, failed, why: Object.fromEntries(why) }));
