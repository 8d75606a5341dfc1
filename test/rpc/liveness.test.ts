import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { type AddressInfo, connect, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { loadConfig } from "../../src/config/config.js";
import { ENTRY } from "../../src/protocol/status.js";
import { watchLiveness } from "../../src/rpc/liveness.js";
import { type RunnerProcess, spawnRunner } from "../helpers/process.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { finished, processOf } from "../helpers/runners.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

const TIMEOUT = 1_000;

/** Resolves with how long after `since` the socket closed. */
function closedAfter(socket: { once(event: "close", listener: () => void): unknown }, since: () => number): Promise<number> {
  return new Promise((resolve) => socket.once("close", () => resolve(Date.now() - since())));
}

/** Whether any process of group `pgid` is still running (zombies waiting to be reaped do not count). */
function groupAlive(pgid: number): boolean {
  if (!existsSync("/proc/self/stat")) {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") return true;
  }
  return false;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

describe("liveness configuration", () => {
  it("defaults to 20 s; config.json livenessTimeoutMs < SPOOL_LIVENESS_TIMEOUT_MS < overrides; 0 is allowed", () => {
    const home = tempDir();
    expect(loadConfig({ home }, {}).livenessTimeoutMs).toBe(20_000);
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, "config.json"), JSON.stringify({ livenessTimeoutMs: 5_000 }));
    expect(loadConfig({ home }, {}).livenessTimeoutMs).toBe(5_000);
    expect(loadConfig({ home }, { SPOOL_LIVENESS_TIMEOUT_MS: "0" }).livenessTimeoutMs).toBe(0);
    expect(loadConfig({ home, livenessTimeoutMs: 1_000 }, { SPOOL_LIVENESS_TIMEOUT_MS: "0" }).livenessTimeoutMs).toBe(1_000);
    expect(() => loadConfig({ home }, { SPOOL_LIVENESS_TIMEOUT_MS: "soon" })).toThrow(/SPOOL_LIVENESS_TIMEOUT_MS/);
    writeFileSync(join(home, "config.json"), JSON.stringify({ livenessTimeoutMs: -1 }));
    expect(() => loadConfig({ home }, {})).toThrow(/livenessTimeoutMs/);
  });
});

describe("liveness of WebSocket connections (server pings, silence closes)", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ livenessTimeoutMs: TIMEOUT });
  });
  afterAll(() => ts?.stop());

  const rawSocket = () => new WebSocket(ts.server.url, { headers: { Authorization: `Bearer ${ts.server.token}` }, autoPong: false });

  it("closes a connection that never answers pings; a quiet SpoolClient (its pongs answer) stays open", async () => {
    // Connected first and then quiet: only its automatic pongs keep it alive.
    const quiet = await ts.clientIn("alpha");
    const socket = rawSocket();
    let openedAt = 0;
    let pings = 0;
    socket.on("ping", () => pings++);
    const closed = closedAfter(socket, () => openedAt);
    const closeCode = new Promise<number>((r) => socket.once("close", (code) => r(code)));
    await new Promise((r) => socket.once("open", r));
    openedAt = Date.now();

    const after = await closed;
    expect(await closeCode).toBe(1006); // terminated, no closing handshake
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(after).toBeGreaterThanOrEqual(0.75 * TIMEOUT); // the server's watch starts a little before the client sees "open"
    expect(after).toBeLessThan(TIMEOUT + 2_000);

    expect(quiet.closed).toBe(false);
    expect((await quiet.call("ping", {})).pong).toBe(true);
  });

  it("counts any inbound message as life: a client that never pongs but keeps calling stays open", async () => {
    const socket = rawSocket();
    let closedEarly = false;
    socket.once("close", () => (closedEarly = true));
    await new Promise((r) => socket.once("open", r));
    const start = Date.now();
    let id = 0;
    let lastSentAt = 0;
    // Twice the timeout: one that counted only pongs would have closed it after one timeout and a ping interval.
    while (Date.now() - start < 2 * TIMEOUT) {
      const reply = new Promise<string>((r) => socket.once("message", (data) => r(data.toString())));
      lastSentAt = Date.now();
      socket.send(JSON.stringify({ jsonrpc: "2.0", id: ++id, method: "ping" }));
      expect(JSON.parse(await reply).result.pong).toBe(true);
      await new Promise((r) => setTimeout(r, TIMEOUT / 4)); // the client's call cadence, below the timeout
    }
    expect(closedEarly).toBe(false);
    // Now silent: closed about a timeout after its last message.
    const after = await closedAfter(socket, () => lastSentAt);
    expect(after).toBeGreaterThanOrEqual(TIMEOUT);
  });
});

describe("watchLiveness over a slow upload (raw TCP bytes count)", () => {
  let wss: WebSocketServer;
  let port: number;
  let onConnection: (ws: WebSocket, raw: Socket) => void;
  const clients: Socket[] = [];
  beforeAll(async () => {
    wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await new Promise((r) => wss.once("listening", r));
    port = (wss.address() as AddressInfo).port;
    wss.on("connection", (ws, request) => onConnection(ws, request.socket as Socket));
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });
  afterAll(async () => {
    for (const ws of wss.clients) ws.terminate();
    await new Promise((r) => wss.close(r));
  });

  /** A hand-made WebSocket client that never answers pings; resolves once the upgrade is done. */
  async function rawClient(): Promise<Socket> {
    const socket = connect(port, "127.0.0.1");
    clients.push(socket);
    await new Promise((r) => socket.once("connect", r));
    socket.write(
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    let head = "";
    await new Promise<void>((resolve) => {
      const onData = (data: Buffer) => {
        head += data.toString("latin1");
        if (!head.includes("\r\n\r\n")) return;
        socket.off("data", onData);
        socket.pause();
        resolve();
      };
      socket.on("data", onData);
    });
    expect(head).toMatch(/^HTTP\/1\.1 101/);
    return socket;
  }

  const connected = () =>
    new Promise<WebSocket>((resolve) => {
      onConnection = (ws, raw) => {
        watchLiveness(ws, { timeoutMs: TIMEOUT, raw });
        resolve(ws);
      };
    });

  it("keeps a client uploading one large frame slowly (no pong can overtake it); drops it once it stalls", async () => {
    const server = connected();
    const client = await rawClient();
    const ws = await server;
    let closed = false;
    const closedAt = new Promise<number>((r) =>
      ws.once("close", () => {
        closed = true;
        r(Date.now());
      }),
    );
    const message = new Promise<Buffer>((r) => ws.once("message", (data) => r(data as Buffer)));
    const size = 60_000;
    // FIN + text, masked, 16-bit length, all-zero mask key.
    client.write(Buffer.from([0x81, 0x80 | 126, size >> 8, size & 0xff, 0, 0, 0, 0]));
    const payload = Buffer.alloc(size, "x");
    const start = Date.now();
    for (let sent = 0; sent < size; sent += 1_000) {
      client.write(payload.subarray(sent, sent + 1_000));
      await new Promise((r) => setTimeout(r, 40)); // the upload's pace: 60 pieces over 2.4 timeouts
    }
    expect((await message).length).toBe(size);
    const lastByteAt = Date.now();
    expect(lastByteAt - start).toBeGreaterThan(2 * TIMEOUT);
    expect(closed).toBe(false);
    expect((await closedAt) - lastByteAt).toBeGreaterThanOrEqual(0.75 * TIMEOUT);
  });
});

describe("a frozen runner (SIGSTOP) is dropped by liveness, its work ends 499 runner lost, its name is free", () => {
  // Longer than the rest of the file's: with 1 s and a 500 ms grace, the command's pid never came within 60 s on a
  // machine running three suites at once (ciQ); the likeliest cause, a runner left unscheduled for a second and taken
  // for dead before it started the command. Should it happen again, the failure says what the server and runner saw.
  const TIMEOUT = 4_000;
  const GRACE = 2_000;
  let ts: TestServer;
  let runner: RunnerProcess | undefined;
  let commandPid: number | undefined;
  const warnings: string[] = [];
  const project = "frozen";
  const name = "frozen-box";
  const startRunner = () =>
    spawnRunner(
      [
        "--server",
        ts.server.url,
        "--token-file",
        ts.server.config.tokenFile,
        "--project",
        project,
        "--name",
        name,
        "--backend",
        "local",
        "--kill-grace",
        "500",
      ],
      { SPOOL_LOG: "info" },
    );
  const attachedRunners = async (client: SpoolClient) =>
    (await client.call("runner/list", {})).runners.filter((r: { name: string }) => r.name === name) as { attachedAt: number }[];

  beforeAll(async () => {
    const quiet = () => undefined;
    const logger = { debug: quiet, info: quiet, error: quiet, warn: (message: string) => void warnings.push(message) };
    ts = await startTestServer({ localRunner: false, livenessTimeoutMs: TIMEOUT, runnerGraceMs: GRACE, logger });
  });
  afterEach(async () => {
    // A stopped runner cannot act on SIGTERM; SIGKILL works on it. Its command leads its own group.
    if (runner?.child.pid) {
      signal(runner.child.pid, "SIGKILL");
      await runner.stop("SIGKILL");
    }
    if (commandPid) signal(-commandPid, "SIGKILL");
    runner = undefined;
    commandPid = undefined;
  });
  afterAll(() => ts?.stop());

  it("SIGSTOP the runner mid-command: dropped after the liveness timeout, 499 runner lost after the grace; SIGCONT: it re-attaches and kills the orphan", async () => {
    const client = await ts.clientIn(project);
    runner = await startRunner();
    const runnerPid = runner.child.pid!;
    const paths = await proposeAndAccept(client, client, "run-1", "echo started; sleep 30", { runner: name });
    commandPid = (
      await processOf(client, "run-1", paths.path).catch(async (error: Error) => {
        const log = await client.call("entry/get", { run: "run-1", path: paths.path });
        throw new Error(
          `${error.message}; the log entry: ${log.status} ${JSON.stringify(log.attributes)}; warnings: ${warnings.join(" | ")}; the runner said:\n${runner!.output()}`,
        );
      })
    ).pid!;
    await eventually(async () => (await client.call("entry/get", { run: "run-1", path: paths.stdout })).bytes > 0, 10_000, "the command's output");
    expect((await client.call("entry/get", { run: "run-1", path: paths.stdout })).status).toBe(ENTRY.streaming);
    expect(
      (await client.call("entry/list", { run: "run-1" })).entries.filter((e: { status: number }) => e.status === ENTRY.streaming).length,
    ).toBeGreaterThanOrEqual(2);

    // While the runner is attached its name is taken.
    const other = await ts.clientIn(project);
    await expect(other.call("runner/attach", { name, backend: "local" })).rejects.toMatchObject({ data: { code: "CONFLICT" } });

    const frozenAt = Date.now();
    process.kill(runnerPid, "SIGSTOP");
    const done = await finished(client, "run-1", paths, 30_000);
    const endedAfter = Date.now() - frozenAt;
    expect(done.stdout.status).toBe(ENTRY.cancelled);
    expect(done.stdout.attributes.reason).toBe("runner lost");
    expect(done.stderr.status).toBe(ENTRY.cancelled);
    expect(done.out.toString()).toBe("started\n");
    // Silence (its last pong may predate the freeze by up to one ping interval, TIMEOUT / 4), then the grace.
    expect(endedAfter).toBeGreaterThanOrEqual(0.75 * TIMEOUT + GRACE - 50);
    expect(warnings.some((w) => new RegExp(`nothing received for \\d+ ms \\(livenessTimeoutMs ${TIMEOUT}\\); taken for dead`).test(w))).toBe(true);
    const listed = (await client.call("entry/list", { run: "run-1" })).entries;
    expect(listed.filter((e: { status: number }) => e.status === ENTRY.streaming)).toEqual([]);

    // The name is free again; the stopped runner's command keeps running meanwhile.
    const attached = await other.call("runner/attach", { name, backend: "local" });
    expect(attached.name).toBe(name);
    expect(groupAlive(commandPid)).toBe(true);
    other.close();
    await eventually(async () => (await attachedRunners(client)).length === 0, 5_000, "the name to be released");

    // Thawed, the runner notices its dead connection, re-attaches, hears its producer was finished and kills it.
    process.kill(runnerPid, "SIGCONT");
    await eventually(() => !groupAlive(commandPid!), 15_000, "the orphaned command to be killed by the re-attached runner");
    await eventually(async () => (await attachedRunners(client)).length === 1, 10_000, "the runner to re-attach");
    expect(runner.output()).toMatch(/connection lost; reconnecting/);
    // Its waits are bounded one by one (60 + 10 + 30 + 5 + 15 + 10 s): the whole no tighter than their sum and the
    // runner's start (two CI runs side by side took it past 60 s without any of them failing).
  }, 180_000);

  it("a stall of the server itself longer than the timeout does not drop healthy connections", async () => {
    const client = await ts.clientIn(project);
    runner = await startRunner();
    const [before] = await attachedRunners(client);
    expect(before).toBeDefined();
    // A connection of the test's own, answering pings: the pings it gets tell how far the server's watches have ticked.
    const watched = new WebSocket(ts.server.url, { headers: { Authorization: `Bearer ${ts.server.token}` } });
    await new Promise((r) => watched.once("open", r));
    let pings = 0;
    watched.on("ping", () => pings++);
    warnings.length = 0;
    const stallUntil = Date.now() + 1.5 * TIMEOUT;
    while (Date.now() < stallUntil) {
      // busy: no timers, no I/O, no pings for one and a half timeouts
    }
    pings = 0;
    // Then a timeout of normal running (four pings, a watch's interval apart: every watch has ticked three times since
    // the stall), long enough for a wrongly counted silence to end the runner's connection.
    await eventually(() => pings >= 4 || watched.readyState !== WebSocket.OPEN, 30_000, "four pings after the stall");
    expect(watched.readyState).toBe(WebSocket.OPEN);
    watched.close();
    expect(warnings.filter((w) => /taken for dead/.test(w))).toEqual([]);
    expect(await attachedRunners(client)).toEqual([before]);
    expect(runner.output()).not.toMatch(/connection lost/);
    expect((await client.call("ping", {})).pong).toBe(true);
  }, 60_000);
});
