// A sandboxed command's start latency on the local backend (bubblewrap): from backend.start() to the end of
// `true`, in read-only and workspace-write (no network: slirp4netns is measured elsewhere). It covers what a start
// costs the runner: the paths to hide (the server's, the registry of every Spool home on the machine, the
// credential paths), bwrap's arguments, the seccomp filter, bwrap itself.
// Usage: npx tsx bench/sandbox-start.ts [rounds]   (prints one JSON line: median and p90 per mode, in ms)
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { LocalBackend } from "../src/runners/local.js";

const rounds = Number(process.argv[2] ?? 30);
const HIDE = ["~/.ssh", "~/.aws", "~/.azure", "~/.config/gcloud", "~/.config/gh", "~/.kube", "~/.docker/config.json", "~/.netrc"];
const backend = new LocalBackend();
const workspace = realpathSync(mkdtempSync("/var/tmp/spool-bench-start-"));

async function once(mode: "read-only" | "workspace-write"): Promise<number> {
  const started = performance.now();
  const execution = await backend.start({
    command: "true",
    cwd: workspace,
    workspace,
    env: {},
    sandbox: { mode, network: false, hide: HIDE },
    signal: new AbortController().signal,
  });
  execution.stdout.resume();
  execution.stderr.resume();
  await execution.result;
  return performance.now() - started;
}

const result: Record<string, { median: number; p90: number }> = {};
await once("read-only"); // the probe
for (const mode of ["read-only", "workspace-write"] as const) {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) times.push(await once(mode));
  times.sort((a, b) => a - b);
  const at = (q: number) => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]! * 10) / 10;
  result[mode] = { median: at(0.5), p90: at(0.9) };
}
console.log(JSON.stringify(result));
await backend.close();
rmSync(workspace, { recursive: true, force: true });
