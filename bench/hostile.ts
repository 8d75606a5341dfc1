// Hostile clients: each attack runs against a fresh `spool serve` process on loopback while a
// probe connection pings it every 20 ms. Prints, per attack, what the attacker got back, the
// server's peak RSS (VmHWM, and the highest VmRSS sampled), the probe's worst ping, the server's
// CPU time while it should be idle, whether it is still alive and serving, and what the server
// logged about closing connections.
// Usage: npx tsx bench/hostile.ts [attack,…]   (default: all; names below)
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import WebSocket from "ws";
import { SpoolClient } from "../src/client/spool-client.js";
import { LimitsSchema } from "../src/config/config.js";
import { machine } from "./common.js";

const MB = 1024 * 1024;
const ATTACKS = ["batch-run-get", "batch-run-list", "max-batch", "pipelined-reads", "paused-joiners", "paused-watchers", "many-readers"] as const;
type Attack = (typeof ATTACKS)[number];
const chosen = (process.argv[2]?.split(",") ?? ATTACKS) as Attack[];
for (const name of chosen) if (!ATTACKS.includes(name)) throw new Error(`unknown attack ${name}; one of ${ATTACKS.join(", ")}`);

const proc = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN) / 1024;
/** User + system CPU time of a process, in ms. */
const cpuMs = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
};
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `spool serve` in its own process with a fresh home; stderr is kept to count what it logged. */
async function startServer(config: Record<string, unknown> = {}) {
  const home = mkdtempSync(join(tmpdir(), "spool-hostile-"));
  // The projects' root: apart from the home, which a project may not be (issue 37).
  const root = mkdtempSync(join(tmpdir(), "spool-hostile-root-"));
  writeFileSync(join(home, "config.json"), JSON.stringify({ localRunner: false, ...config }));
  const bin = fileURLToPath(new URL("../bin/spool.js", import.meta.url));
  const child = spawn(
    process.execPath,
    [...(process.env.SPOOL_BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? []), bin, "serve", "--port", "0", "--home", home],
    {
      env: { ...process.env, SPOOL_LOG: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let log = "";
  child.stderr!.on("data", (d: Buffer) => {
    log += d.toString();
  });
  let exited: string | null = null;
  child.once("exit", (code, signal) => {
    exited = `exited with ${signal ?? code}`;
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /Spool listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}: ${log}`)));
  });
  const token = readFileSync(join(home, "token"), "utf8").trim();
  let peakRss = 0;
  let rssBefore = Number.NaN;
  let hwmReset = false;
  const sampler = setInterval(() => {
    if (!exited) peakRss = Math.max(peakRss, proc(child.pid!, "VmRSS"));
  }, 20);
  return {
    url,
    token,
    home,
    root,
    pid: child.pid!,
    get log() {
      return log;
    },
    get exited() {
      return exited;
    },
    peak: () => (exited ? { hwm: NaN, sampled: peakRss } : { hwm: proc(child.pid!, "VmHWM"), sampled: Math.max(peakRss, proc(child.pid!, "VmRSS")) }),
    /** The attack starts now: its peak is measured from here (the kernel's high-water mark is reset where it lets us). */
    attackStarts() {
      if (exited) return;
      rssBefore = proc(child.pid!, "VmRSS");
      peakRss = rssBefore;
      try {
        writeFileSync(`/proc/${child.pid}/clear_refs`, "5");
        hwmReset = true;
      } catch {
        hwmReset = false;
      }
    },
    get rssBefore() {
      return rssBefore;
    },
    get hwmReset() {
      return hwmReset;
    },
    client: async (project: string) => {
      const c = await SpoolClient.connect(url, { token });
      await c.initialize(project, { root });
      return c;
    },
    async stop() {
      clearInterval(sampler);
      if (!exited) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([gone, delay(10_000).then(() => child.kill("SIGKILL"))]);
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}
type Server = Awaited<ReturnType<typeof startServer>>;

/** A raw WebSocket (no client library): it can stop reading whenever the attack wants. */
function raw(server: Server): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.url, { headers: { Authorization: `Bearer ${server.token}` }, maxPayload: 1024 * MB });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
    ws.on("error", () => undefined);
  });
}
const rpc = (id: number | string, method: string, params: object = {}) => ({ jsonrpc: "2.0", id, method, params });
const init = (project: string, server: Server, id: number | string = "init") =>
  JSON.stringify(rpc(id, "initialize", { project, root: server.root, protocolVersion: "1.0" }));
/** The next message whose id is `id` (other messages are skipped); null when the socket closes first. */
function reply(ws: WebSocket, id: number | string | null, timeoutMs: number): Promise<{ text: string; ms: number } | null> {
  const started = performance.now();
  return new Promise((resolve) => {
    const done = (value: { text: string; ms: number } | null) => {
      clearTimeout(timer);
      ws.off("message", onMessage);
      ws.off("close", onClose);
      resolve(value);
    };
    const onMessage = (data: WebSocket.RawData) => {
      const text = data.toString();
      const head = text.slice(0, 200);
      if (head.startsWith("[") || new RegExp(`"id":${JSON.stringify(id)}[,}]`).test(text.slice(0, 200)) || text.endsWith(`"id":${JSON.stringify(id)}}`))
        done({ text, ms: performance.now() - started });
    };
    const onClose = () => done(null);
    const timer = setTimeout(() => done(null), timeoutMs);
    ws.on("message", onMessage);
    ws.once("close", onClose);
  });
}

/**
 * Pings every 20 ms from a connection of its own, on a worker thread of its own, so the
 * bench's work (parsing an attacker's large replies) does not count as the server's delay.
 */
const PINGER = `
const { parentPort, workerData } = require("node:worker_threads");
const WebSocket = require(workerData.ws);
const ws = new WebSocket(workerData.url, { headers: { Authorization: "Bearer " + workerData.token } });
let worst = 0, worstAt = 0, pings = 0, sentAt = null, stopped = false, i = 0;
const t0 = performance.now();
const next = () => {
  if (stopped || ws.readyState !== ws.OPEN) return;
  sentAt = performance.now();
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: "p" + i++, method: "ping" }));
};
ws.on("open", () => { parentPort.postMessage("open"); next(); });
ws.on("error", () => undefined);
ws.on("message", () => {
  if (sentAt !== null && performance.now() - sentAt > worst) { worst = performance.now() - sentAt; worstAt = sentAt - t0; }
  sentAt = null;
  pings++;
  setTimeout(next, 20);
});
parentPort.on("message", () => {
  stopped = true;
  const waiting = sentAt === null ? 0 : performance.now() - sentAt;
  parentPort.postMessage({ worstMs: Math.max(worst, waiting), pings, worstAt });
  ws.terminate();
});
`;

async function pinger(server: Server) {
  const worker = new Worker(PINGER, { eval: true, workerData: { url: server.url, token: server.token, ws: createRequire(import.meta.url).resolve("ws") } });
  await new Promise((resolve) => worker.once("message", resolve));
  return {
    async stop(): Promise<{ worstMs: number; pings: number }> {
      const result = new Promise<{ worstMs: number; pings: number }>((resolve) => worker.once("message", resolve));
      worker.postMessage("stop");
      const answer = await result;
      if (process.env.HX_DEBUG)
        console.log(
          "probe worst",
          answer.worstMs.toFixed(0),
          "sent at",
          ((answer as unknown as { worstAt: number }).worstAt / 1000).toFixed(2),
          "s after probe start",
        );
      await worker.terminate();
      return answer;
    },
  };
}

/** After an attack: does a new client get served (initialize, run/list, ping) within 10 s? */
async function serving(server: Server, project: string): Promise<string> {
  if (server.exited) return `no (server ${server.exited})`;
  try {
    const started = performance.now();
    const c = await Promise.race([server.client(project), delay(10_000).then(() => Promise.reject(new Error("initialize timed out")))]);
    await c.request("run/list", { limit: 1 });
    c.close();
    return `yes (${(performance.now() - started).toFixed(0)} ms for connect+initialize+run/list)`;
  } catch (error) {
    return `no (${error instanceof Error ? error.message : String(error)})`;
  }
}

/** What the server logged about closing connections, by cause. */
const closings = (server: Server) => {
  const lines = server.log.split("\n");
  const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
  const kinds = [
    [count(/closing connection \w+.* with 1008/), "1008 over its output budget"],
    [count(/closing connection \w+.* with 1013/), "1013 server memory budget"],
    [count(/taken for dead/), "silent (livenessTimeoutMs)"],
  ] as const;
  const seen = kinds.filter(([n]) => n > 0).map(([n, what]) => `${n} × ${what}`);
  return seen.length ? seen.join(", ") : "none";
};
const closedCount = (server: Server) => server.log.split("\n").filter((l) => /closing connection|taken for dead/.test(l)).length;

/** An idle run with one accepted producer holding `bytes` of output on channel 1, streamed by `c` itself. */
async function channelOf(c: SpoolClient, bytes: number) {
  await c.request("run/create", { alias: "big" });
  const { path } = await c.request("proposal/create", { run: "big", tool: "sh", command: "big output", sandbox: "full" });
  await c.request("run/resolve", { run: "big", path, decision: "accept", runner: "self" });
  const line = `${"x".repeat(99)}\n`;
  const chunk = line.repeat(Math.floor(MB / line.length));
  let stored = 0;
  for (let seq = 1; stored + chunk.length <= bytes; seq++) {
    await c.request("stream", { run: "big", path, channel: 1, chunk, seq });
    stored += chunk.length;
  }
  await c.request("stream/completed", { run: "big", path, exit_code: 0 });
  return { path, stored };
}

interface Result {
  attack: string;
  what: string;
  outcome: string;
  extra?: string;
}

async function batch(server: Server, method: "run/get" | "run/list", count: number): Promise<Result> {
  const admin = await server.client("hostile");
  await admin.request("run/create", { alias: "r" });
  const attacker = await raw(server);
  attacker.send(init("hostile", server));
  await reply(attacker, "init", 10_000);
  server.attackStarts();
  const ping = await pinger(server);
  const frame = JSON.stringify(Array.from({ length: count }, (_, i) => rpc(i, method, method === "run/get" ? { run: "r" } : {})));
  const got = reply(attacker, null, 600_000);
  attacker.send(frame);
  const answer = await got;
  const { worstMs, pings } = await ping.stop();
  let outcome = "no reply (closed or timed out after 600 s)";
  if (answer) {
    const parsed = JSON.parse(answer.text);
    outcome = Array.isArray(parsed)
      ? `${parsed.length} replies in ${answer.ms.toFixed(0)} ms`
      : `one error in ${answer.ms.toFixed(0)} ms: ${parsed.error?.code} "${parsed.error?.message}"`;
  }
  attacker.close();
  admin.close();
  return {
    attack: `batch-${method.replace("/", "-")}`,
    what: `one frame: a batch of ${count} ${method} (${(frame.length / MB).toFixed(1)} MB)`,
    outcome,
    extra: `probe: ${pings} pings, worst ${worstMs.toFixed(0)} ms`,
  };
}

/** The biggest batch the server takes, of its most expensive cheap call (run/list of 1000 runs), while a probe pings. */
async function maxBatch(server: Server): Promise<Result> {
  const admin = await server.client("hostile");
  const RUNS = 1000;
  const creates = Array.from({ length: RUNS }, (_, i) => admin.request("run/create", { alias: `run-${i}` }));
  await Promise.all(creates);
  const attacker = await raw(server);
  attacker.send(init("hostile", server));
  await reply(attacker, "init", 10_000);
  // The largest batch the server takes by default (100 where there is no limit).
  const cap = (LimitsSchema.parse({}) as { maxBatchSize?: number }).maxBatchSize ?? 100;
  server.attackStarts();
  const ping = await pinger(server);
  const rounds: number[] = [];
  let sizes = "";
  for (let round = 0; round < 5; round++) {
    const got = reply(attacker, null, 120_000);
    attacker.send(JSON.stringify(Array.from({ length: cap }, (_, i) => rpc(i, "run/list", { limit: 1000 }))));
    const answer = await got;
    if (!answer) break;
    rounds.push(answer.ms);
    const parsed = JSON.parse(answer.text);
    sizes = `${(answer.text.length / MB).toFixed(1)} MB reply, ${Array.isArray(parsed) ? parsed.filter((r: { result?: unknown }) => r.result).length : 0} results`;
  }
  const { worstMs, pings } = await ping.stop();
  attacker.close();
  admin.close();
  return {
    attack: "max-batch",
    what: `5 batches of ${cap} run/list (limit 1000) over ${RUNS} runs, one after another`,
    outcome: rounds.length ? `each answered in ${rounds.map((ms) => ms.toFixed(0)).join("/")} ms; last: ${sizes}` : "no reply",
    extra: `probe: ${pings} pings, worst ${worstMs.toFixed(0)} ms`,
  };
}

/** Connections that pipeline `entry/get` of an 8 MB channel and never read a byte. */
async function pipelinedReads(server: Server, connections: number, requests: number, attack: string): Promise<Result> {
  const admin = await server.client("hostile");
  const { path, stored } = await channelOf(admin, 8 * MB);
  server.attackStarts();
  const ping = await pinger(server);
  const attackers = await Promise.all(Array.from({ length: connections }, () => raw(server)));
  for (const ws of attackers) {
    ws.send(init("hostile", server));
    await reply(ws, "init", 10_000);
    ws.pause();
  }
  const channel = path.replace(/^log:\/\/(turn_\d+)\/sh\/(.+)$/, "sh://$1/$2_1");
  const started = performance.now();
  for (const ws of attackers) for (let i = 0; i < requests; i++) ws.send(JSON.stringify(rpc(i, "entry/get", { run: "big", path: channel })));
  // Watch for up to 35 s (or until the server dies or has closed every attacker: one that does not read
  // answers no ping either, so livenessTimeoutMs, 20 s, ends it at the latest).
  while (performance.now() - started < 35_000 && !server.exited) {
    if (closedCount(server) >= connections) break;
    await delay(100);
  }
  const watched = performance.now() - started;
  const { worstMs, pings } = await ping.stop();
  for (const ws of attackers) ws.terminate();
  admin.close();
  return {
    attack,
    what: `${connections} connection(s) that never read, each pipelining ${requests} entry/get of a ${(stored / MB).toFixed(1)} MB channel (${((connections * requests * stored) / MB / 1024).toFixed(1)} GB of replies)`,
    outcome: `watched ${(watched / 1000).toFixed(1)} s; closings: ${closings(server)}`,
    extra: `probe: ${pings} pings, worst ${worstMs.toFixed(0)} ms`,
  };
}

/** Ten connections that initialize into a project with 1000 pending proposals (64 KiB commands) and never read. */
async function pausedJoiners(server: Server): Promise<Result> {
  const admin = await server.client("hostile");
  await admin.request("run/create", { alias: "p" });
  const PROPOSALS = 1000;
  for (let i = 0; i < PROPOSALS; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, PROPOSALS - i) }, (_, k) =>
        admin.request("proposal/create", { run: "p", tool: "sh", command: `echo ${i + k} ${"y".repeat(64 * 1024 - 20)}` }),
      ),
    );
  }
  admin.close();
  server.attackStarts();
  const ping = await pinger(server);
  const started = performance.now();
  const joiners = await Promise.all(Array.from({ length: 10 }, () => raw(server)));
  for (const ws of joiners) {
    ws.send(init("hostile", server));
    ws.pause();
  }
  await delay(10_000);
  const { worstMs, pings } = await ping.stop();
  // Nothing lost: a client that reads gets every pending proposal.
  const reader = await SpoolClient.connect(server.url, { token: server.token });
  const seen = new Set<string>();
  const all = new Promise<void>((resolve) => {
    reader.on("run/proposal", (p: { path: string }) => {
      seen.add(p.path);
      if (seen.size === PROPOSALS) resolve();
    });
  });
  const t0 = performance.now();
  await reader.initialize("hostile", { root: server.root });
  await Promise.race([all, delay(30_000)]);
  const readMs = performance.now() - t0;
  reader.close();
  for (const ws of joiners) ws.terminate();
  return {
    attack: "paused-joiners",
    what: `10 connections initialize into a project with ${PROPOSALS} pending proposals (64 KiB commands) and never read; watched 10 s`,
    outcome: `closings: ${closings(server)}; then a reading client got ${seen.size}/${PROPOSALS} proposals in ${readMs.toFixed(0)} ms (${((performance.now() - started) / 1000).toFixed(1)} s after the joiners)`,
    extra: `probe: ${pings} pings, worst ${worstMs.toFixed(0)} ms`,
  };
}

/** 40 connections × 10 subscriptions replaying a 16 MB channel, none reading: memory, and the server's CPU while they sit. */
async function pausedWatchers(server: Server): Promise<Result> {
  const admin = await server.client("hostile");
  const { path } = await channelOf(admin, 16 * MB);
  const CONNECTIONS = 40;
  const SUBS = 10;
  server.attackStarts();
  const watchers = await Promise.all(Array.from({ length: CONNECTIONS }, () => raw(server)));
  for (const ws of watchers) {
    ws.send(init("hostile", server));
    await reply(ws, "init", 10_000);
    ws.pause();
    for (let i = 0; i < SUBS; i++) ws.send(JSON.stringify(rpc(`s${i}`, "stream/subscribe", { run: "big", path })));
  }
  const ping = await pinger(server);
  await delay(5_000);
  const { worstMs, pings } = await ping.stop();
  // Nothing else talks to the server now. Once it has pushed what the sockets take (at most 30 s), what it
  // spends is what the paused watchers cost it.
  for (let i = 0; i < 30; i++) {
    const before = cpuMs(server.pid);
    await delay(1_000);
    if (cpuMs(server.pid) - before < 20) break;
  }
  const cpu0 = cpuMs(server.pid);
  await delay(5_000);
  const idleCpu = cpuMs(server.pid) - cpu0;
  for (const ws of watchers) ws.terminate();
  admin.close();
  return {
    attack: "paused-watchers",
    what: `${CONNECTIONS} connections × ${SUBS} stream/subscribe of a 16 MB channel, reading nothing after initialize; CPU measured over 5 s with no other client`,
    outcome: `server CPU while they sit: ${((idleCpu / 5_000) * 100).toFixed(1)}% of a core (${idleCpu.toFixed(0)} ms in 5 s); closings: ${closings(server)}`,
    extra: `probe: ${pings} pings, worst ${worstMs.toFixed(0)} ms`,
  };
}

console.log(`machine: ${machine()}`);
const results: (Result & { peak: { hwm: number; sampled: number }; alive: string; rssBefore: number })[] = [];
for (const attack of chosen) {
  // The paused watchers are watched longer than livenessTimeoutMs would let them live.
  const server = await startServer(attack === "paused-watchers" ? { livenessTimeoutMs: 120_000 } : {});
  let result: Result;
  try {
    if (attack === "batch-run-get") result = await batch(server, "run/get", 16_000);
    else if (attack === "batch-run-list") result = await batch(server, "run/list", 40_000);
    else if (attack === "max-batch") result = await maxBatch(server);
    else if (attack === "pipelined-reads") result = await pipelinedReads(server, 1, 400, attack);
    else if (attack === "many-readers") result = await pipelinedReads(server, 40, 8, attack);
    else if (attack === "paused-joiners") result = await pausedJoiners(server);
    else result = await pausedWatchers(server);
  } catch (error) {
    result = { attack, what: "", outcome: `bench failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (process.env.HX_DEBUG)
    console.log(
      server.log
        .split("\n")
        .filter((l) => l.includes("[eld]") || l.includes("closing"))
        .slice(0, 30)
        .join("\n"),
    );
  const peak = server.peak();
  const alive = await serving(server, "after");
  results.push({ ...result, peak, alive, rssBefore: server.rssBefore });
  console.log(`\n${result.attack}: ${result.what}`);
  console.log(`  attacker: ${result.outcome}`);
  if (result.extra) console.log(`  ${result.extra}`);
  console.log(
    `  server RSS: ${server.rssBefore.toFixed(0)} MB when the attack starts; peak ${Number.isNaN(peak.hwm) ? "n/a" : `${peak.hwm.toFixed(0)} MB`} (VmHWM${server.hwmReset ? ", reset at the start" : ", since start-up"}), highest sampled ${peak.sampled.toFixed(0)} MB`,
  );
  console.log(`  server alive and serving afterwards: ${alive}`);
  await server.stop();
}
console.log("\nattack            rss_before_mb  peak_rss_mb  probe_worst_ms  serving");
for (const r of results) {
  const worst = /worst (\d+) ms/.exec(r.extra ?? "")?.[1] ?? "-";
  const peak = Number.isNaN(r.peak.hwm) ? `>${r.peak.sampled.toFixed(0)}` : Math.max(r.peak.hwm, r.peak.sampled).toFixed(0);
  console.log(
    `${r.attack.padEnd(18)}${r.rssBefore.toFixed(0).padStart(13)}  ${peak.padStart(11)}  ${worst.padStart(14)}  ${r.alive.startsWith("yes") ? "yes" : "NO"}`,
  );
}
process.exit(0);
