/**
 * Network mode allowlist's cost (SPEC §7 Runners, "Sandbox modes"): a command downloads N MB (default 200) with curl
 * from a local HTTP server, through the egress proxy (workspace-write, allowlist: an absolute URL, and plain HTTP in a
 * CONNECT tunnel, whose requests the proxy reads for their Host) and directly (full), A B C A B C. Prints
 * curl's MB/s for each, and this process's CPU (the runner: the local backend runs in it) per run, which the proxy,
 * a process of its own, must leave where it was: the download never passes through the runner.
 *
 *   npx tsx bench/egress.ts [MB] [rounds]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecSpec } from "../src/runners/backend.js";
import { LocalBackend } from "../src/runners/local/local.js";
import { machine } from "./common.js";

const mb = Number(process.argv[2] ?? 200);
const rounds = Number(process.argv[3] ?? 3);

// The server is a process of its own, so this process's CPU is the runner's alone.
const serverSource = `
const http = require("http");
const block = Buffer.alloc(256 * 1024, 120);
const total = ${mb} * 1024 * 1024;
const server = http.createServer((req, res) => {
  res.writeHead(200, { "content-length": total });
  let sent = 0;
  const pump = () => { while (sent < total) { sent += block.length; if (!res.write(block)) return res.once("drain", pump); } res.end(); };
  pump();
});
server.listen(0, "127.0.0.2", () => console.log(server.address().port));
`;
const server = spawn(process.execPath, ["-e", serverSource], { stdio: ["ignore", "pipe", "inherit"] });
const port = await new Promise<number>((done) => server.stdout!.once("data", (b: Buffer) => done(Number(b.toString().trim()))));

const root = realpathSync(mkdtempSync(join(tmpdir(), "spool-bench-egress-")));
const backend = new LocalBackend({ egressHosts: { "big.test": "127.0.0.2" } });

const MODES = ["allowlist", "tunnel", "full"] as const;

async function once(mode: (typeof MODES)[number]): Promise<{ mbs: number; cpuMs: number }> {
  const url = mode === "full" ? `http://127.0.0.2:${port}/` : `http://big.test:${port}/`;
  const spec: ExecSpec = {
    command: `curl -sS ${mode === "tunnel" ? "-p " : ""}-o /dev/null -w '%{speed_download}' ${url}`,
    cwd: root,
    workspace: root,
    env: {},
    ...(mode !== "full" ? { sandbox: { mode: "workspace-write" as const, egress: { allow: ["big.test"] } } } : {}),
    timeoutMs: 600_000,
    signal: new AbortController().signal,
  };
  const before = process.cpuUsage();
  const execution = await backend.start(spec);
  const chunks: Buffer[] = [];
  execution.stdout.on("data", (c: Buffer) => chunks.push(c));
  execution.stderr.resume();
  const result = await execution.result;
  const cpu = process.cpuUsage(before);
  if (result.exitCode !== 0) throw new Error(`${mode}: curl exited ${result.exitCode}`);
  return { mbs: Number(Buffer.concat(chunks).toString()) / 2 ** 20, cpuMs: (cpu.user + cpu.system) / 1000 };
}

console.log(`machine: ${machine()}; ${mb} MB a download; ${rounds} rounds A (allowlist) B (plain HTTP in a tunnel) C (full)`);
const results: Record<string, { mbs: number; cpuMs: number }[]> = { allowlist: [], tunnel: [], full: [] };
await once("full"); // warm-up (bwrap probe, page cache)
for (let i = 0; i < rounds; i++) {
  for (const mode of MODES) {
    const r = await once(mode);
    results[mode]!.push(r);
    console.log(`${mode.padEnd(9)} ${r.mbs.toFixed(0).padStart(5)} MB/s  runner CPU ${r.cpuMs.toFixed(0)} ms`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const mode of MODES) {
  const rs = results[mode]!;
  console.log(`${mode}: median ${median(rs.map((r) => r.mbs)).toFixed(0)} MB/s, runner CPU median ${median(rs.map((r) => r.cpuMs)).toFixed(0)} ms`);
}
server.kill();
await backend.close();
rmSync(root, { recursive: true, force: true });
