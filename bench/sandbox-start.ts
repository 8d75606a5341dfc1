// A sandboxed command's start latency on the local backend (bubblewrap): from backend.start() to the end of
// `true`, in read-only and workspace-write (no network: slirp4netns is measured elsewhere). It covers what a start
// costs the runner: its view (the toolchains, the copy of /etc, the checks against the server's state and the registry
// of every Spool home on the machine; before issue 73 the paths it hid: those, and the credential paths), bwrap's
// arguments, the seccomp filter, bwrap itself. The same script runs in trees before and after: each reads the fields
// it knows (`hide` before, `secrets` after).
// Usage: npx tsx bench/sandbox-start.ts [rounds] [homes]   (prints one JSON line: median and p90 per mode, in ms, and
// the CPU a start costs: this process's and its children's (bwrap, the sandbox's shell), which a busy machine does
// not inflate as it does the wall clock)
// With `homes`, the registry is a fresh one (SPOOL_REGISTRY) holding that many homes under /tmp as test servers
// leave them (home, token, database, processes; 8 paths each as a server records them, a stopped server's socket
// and WAL among them), recorded through this tree's home registry where it has one; without, the registry is
// SPOOL_REGISTRY or the user's. Run it from each tree to compare trees (the script is the same).
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const rounds = Number(process.argv[2] ?? 30);
const homes = process.argv[3] === undefined ? null : Number(process.argv[3]);
// The server's state as a server sends it (its home, token, config, processes, database), in a home outside /tmp.
const serverHome = mkdtempSync("/var/tmp/spool-bench-server-");
const SERVER = ["", "token", "config.json", "processes", "spool.db", "spool.db-wal", "spool.db-shm"].map((p) => join(serverHome, p));
const HIDE = ["~/.ssh", "~/.aws", "~/.azure", "~/.config/gcloud", "~/.config/gh", "~/.kube", "~/.docker/config.json", "~/.netrc", ...SERVER];
const made: string[] = [serverHome];

if (homes !== null) {
  const registry = mkdtempSync("/tmp/spool-bench-registry-");
  made.push(registry);
  process.env.SPOOL_REGISTRY = registry;
  // A tree before the registry (issue 54) has none: its sandboxes hide only what they are given.
  const record = await import("../src/home/registry.js").then(
    (m: { recordStatePaths?: (paths: string[]) => void }) => m.recordStatePaths ?? null,
    () => null,
  );
  for (let i = 0; i < homes; i++) {
    const home = mkdtempSync("/tmp/spool-bench-home-");
    made.push(home);
    writeFileSync(join(home, "token"), "x\n");
    writeFileSync(join(home, "spool.db"), "");
    mkdirSync(join(home, "processes"));
    const paths = ["", "token", "config.json", "processes", "spool.db", "spool.db-wal", "spool.db-shm", "spool.sock"].map((p) => join(home, p));
    record?.(paths);
  }
}

const { LocalBackend } = await import("../src/runners/local/local.js");
const backend = new LocalBackend();
const workspace = realpathSync(mkdtempSync("/var/tmp/spool-bench-start-"));

async function once(mode: "read-only" | "workspace-write"): Promise<number> {
  const started = performance.now();
  const sandbox = { mode, network: false, hide: HIDE, secrets: SERVER };
  const execution = await backend.start({ command: "true", cwd: workspace, workspace, env: {}, sandbox, signal: new AbortController().signal });
  execution.stdout.resume();
  execution.stderr.resume();
  await execution.result;
  return performance.now() - started;
}

/** CPU milliseconds so far: this process's, and its reaped children's (clock ticks of 10 ms, from /proc/self/stat). */
function cpuMs(): number {
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
  const own = process.cpuUsage();
  return (own.user + own.system) / 1000 + (Number(fields[13]) + Number(fields[14])) * 10;
}

const result: Record<string, { median: number; p90: number; cpu: number }> = {};
await once("read-only"); // the probe
for (const mode of ["read-only", "workspace-write"] as const) {
  const times: number[] = [];
  const before = cpuMs();
  for (let i = 0; i < rounds; i++) times.push(await once(mode));
  const cpu = Math.round(((cpuMs() - before) / rounds) * 10) / 10;
  times.sort((a, b) => a - b);
  const at = (q: number) => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]! * 10) / 10;
  result[mode] = { median: at(0.5), p90: at(0.9), cpu };
}
console.log(JSON.stringify({ homes, ...result }));
await backend.close();
rmSync(workspace, { recursive: true, force: true });
for (const dir of made) rmSync(dir, { recursive: true, force: true });
