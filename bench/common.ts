import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { SpoolClient } from "../src/client/spool-client.js";

export function machine(): string {
  const cpu = cpus();
  return `${cpu[0]?.model ?? "unknown cpu"} × ${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${process.platform}`;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * The environment assignments and node flags a tree's bin/spool.js gives itself in its shebang
 * (`#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=2`), so a server started here runs as `spool serve`
 * does; SPOOL_BENCH_NODE_ARGS (the bench's, or a tree's in compare.ts) replaces both (a tree's query sets variables).
 */
export function binLaunch(bin: string, env: NodeJS.ProcessEnv = process.env): { args: string[]; env: Record<string, string> } {
  const given = env.SPOOL_BENCH_NODE_ARGS ?? process.env.SPOOL_BENCH_NODE_ARGS;
  if (given !== undefined) return { args: given.split(" ").filter(Boolean), env: {} };
  const shebang = /^#!\S*env -S((?: +[A-Za-z_][A-Za-z0-9_]*=\S*)*) node((?: +-\S+)*)[ \t]*$/m.exec(readFileSync(bin, "utf8").split("\n", 1)[0]!);
  const vars = (shebang?.[1] ?? "").split(" ").filter(Boolean);
  return {
    args: shebang?.[2]?.split(" ").filter(Boolean) ?? [],
    env: Object.fromEntries(vars.map((v) => [v.slice(0, v.indexOf("=")), v.slice(v.indexOf("=") + 1)])),
  };
}

/** Starts `spool serve` as its own process on a free port with a fresh home. */
export async function startServerProcess(extraEnv: NodeJS.ProcessEnv = {}) {
  const home = mkdtempSync(join(tmpdir(), "spool-bench-"));
  // The projects' root: apart from the home, which a project may not be (issue 37).
  const root = mkdtempSync(join(tmpdir(), "spool-bench-root-"));
  // SPOOL_BENCH_BIN runs another tree's server (a git worktree of an older commit) under the same client.
  const bin = extraEnv.SPOOL_BENCH_BIN ?? process.env.SPOOL_BENCH_BIN ?? fileURLToPath(new URL("../bin/spool.js", import.meta.url));
  // SPOOL_BENCH_LIMITS=high: per-principal bounds no bench reaches (a tree that has them; an older one refuses the keys).
  if ((extraEnv.SPOOL_BENCH_LIMITS ?? process.env.SPOOL_BENCH_LIMITS) === "high") {
    const high = { maxPendingPerPrincipal: 1_000_000, maxPendingPerRun: 1_000_000, proposalsPerMinute: 1_000_000 };
    writeFileSync(join(home, "config.json"), JSON.stringify({ limits: high }));
  }
  const launch = binLaunch(bin, extraEnv);
  const child = spawn(process.execPath, [...launch.args, bin, "serve", "--port", "0", "--home", home], {
    env: { ...process.env, ...launch.env, SPOOL_LOG: "warn", ...extraEnv },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /Spool listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  // Servers sharing one database may share one token file (SPOOL_TOKEN_FILE).
  const tokenFile = extraEnv.SPOOL_TOKEN_FILE ?? join(home, "token");
  const token = readFileSync(tokenFile, "utf8").trim();
  return {
    url,
    token,
    tokenFile,
    home,
    root,
    pid: child.pid!,
    // SPOOL_BENCH_SOCKET=1: over the home's Unix socket, as local clients connect by default (else TCP, the server's proof first).
    connect: async (): Promise<SpoolClient> => {
      // A tree from before the server's proof (issue 37) is connected to with its own client, which sends the token
      // with the upgrade; this tree's client would refuse a server that gives no proof.
      const treeClient = join(dirname(bin), "..", "dist", "client", "spool-client.js");
      if (!existsSync(join(dirname(bin), "..", "dist", "client", "server-proof.js")) && existsSync(treeClient)) {
        const old = (await import(pathToFileURL(treeClient).href)) as { SpoolClient: typeof SpoolClient };
        return old.SpoolClient.connect(url, { token });
      }
      return SpoolClient.connect(process.env.SPOOL_BENCH_SOCKET === "1" ? `ws+unix://${join(home, "spool.sock")}:/` : url, { token });
    },
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      rmSync(home, { recursive: true, force: true });
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Starts `spool runner` against a bench server and resolves once it has attached; kill it with SIGTERM. */
export async function startRunnerProcess(server: { url: string; tokenFile: string }, project: string, name: string, flags: string[]) {
  const bin = process.env.SPOOL_BENCH_BIN ?? fileURLToPath(new URL("../bin/spool.js", import.meta.url));
  const launch = binLaunch(bin);
  const runner = spawn(
    process.execPath,
    // SPOOL_BENCH_RUNNER_NODE_ARGS: node flags for the runners alone (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
    [
      ...(process.env.SPOOL_BENCH_RUNNER_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
      ...launch.args,
      bin,
      "runner",
      "--server",
      server.url,
      "--token-file",
      server.tokenFile,
      "--project",
      project,
      "--name",
      name,
      ...flags,
    ],
    {
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        ...process.env,
        ...launch.env,
        SPOOL_LOG: "warn",
      },
    },
  );
  await new Promise<void>((resolve, reject) => {
    runner.stdout!.on("data", (d: Buffer) => /attached/.test(d.toString()) && resolve());
    runner.once("exit", (code) => reject(new Error(`spool runner exited with ${code}`)));
  });
  return runner;
}

/** Starts `node <nodeArgs>` that prints `listening <port>` once it serves; the child and its port (it is killed on failure). */
export async function spawnListening(nodeArgs: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(process.execPath, nodeArgs, { stdio: ["ignore", "pipe", "inherit"], env });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => {
        const m = /listening (\d+)/.exec(d.toString());
        if (m) resolve(Number(m[1]));
      });
      child.once("exit", (code) => reject(new Error(`server ${nodeArgs.join(" ").slice(0, 40)}… exited with ${code}`)));
    });
    return { child, port };
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
}

/** The transport's limit: a `ws` server in its own process that JSON.parses each message and answers it. */
export const BARE_SERVER = `
const { WebSocketServer } = require(process.argv[1]);
const { createHash, createHmac } = require("node:crypto");
const http = require("node:http");
// Clients prove a TCP server before sending a token (src/client/server-proof.ts): this one holds the verifier of
// the token "none" the benches connect with, and answers the proof on the same connection, as spool serve does.
const verifier = createHash("sha256").update("none").digest();
const server = http.createServer((req, res) => {
  const address = req.socket.localAddress.replace(/^::ffff:/, "") + ":" + req.socket.localPort;
  const proof = createHmac("sha256", verifier).update(["spool-server-proof", req.headers["spool-nonce"], address].join(String.fromCharCode(10))).digest("hex");
  res.writeHead(204, { "Spool-Proof": proof });
  res.end();
});
const wss = new WebSocketServer({ server, maxPayload: 16 * 1024 * 1024 });
server.listen(0, "127.0.0.1", () => console.log("listening " + server.address().port));
wss.on("connection", (ws) => ws.on("message", (data) => {
  const m = JSON.parse(data.toString());
  const p = m.params || {};
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: { channel: p.channel, seq: p.seq, bytes: 0, duplicate: false } }));
}));
`;

/**
 * `perf record -e cpu-clock -g` attached to a process but counting nothing until `enable` (through its control FIFOs:
 * a command written, its "ack" read back), into `${out}.data`; `stop` ends it and resolves once the file is written.
 * `args`: perf's further options (its frequency, its clock).
 */
export function perfRecorder(pid: number, out: string, args: string[]) {
  mkdirSync(dirname(out), { recursive: true });
  for (const f of ["ctl", "ack"]) {
    rmSync(`${out}.${f}`, { force: true });
    execFileSync("mkfifo", [`${out}.${f}`]);
  }
  const perf = spawn(
    "perf",
    ["record", "-q", "-e", "cpu-clock", "-g", ...args, "-D", "-1", "--control", `fifo:${out}.ctl,${out}.ack`, "-p", String(pid), "-o", `${out}.data`],
    { stdio: "ignore" },
  );
  const ctl = openSync(`${out}.ctl`, "w");
  const ack = openSync(`${out}.ack`, "r");
  const control = (command: string) => {
    writeSync(ctl, `${command}\n`);
    readSync(ack, Buffer.alloc(5));
  };
  // Attached (which takes a while on a loaded machine) once it answers.
  control("ping");
  return {
    enable: () => control("enable"),
    disable: () => control("disable"),
    stop: () =>
      new Promise<void>((resolve) => {
        perf.once("exit", () => {
          for (const f of ["ctl", "ack"]) rmSync(`${out}.${f}`, { force: true });
          resolve();
        });
        perf.kill("SIGINT");
      }),
  };
}

/** SPOOL_BENCH_TREES (`label=root?NAME=value,…`): each tree's label, its `bin/spool.js` and the environment its query sets. */
export function benchTrees(): { label: string; bin: string; env: NodeJS.ProcessEnv }[] {
  return (process.env.SPOOL_BENCH_TREES ?? "")
    .split(",")
    .filter(Boolean)
    .map((t) => {
      const [label, rest] = t.split(/=(.*)/s) as [string, string];
      const [root, query] = rest.split("?");
      return { label, bin: join(root!, "bin", "spool.js"), env: Object.fromEntries(new URLSearchParams(query ?? "")) };
    });
}
