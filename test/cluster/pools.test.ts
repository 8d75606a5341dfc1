// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/core/status.js";
import { proposalFacts } from "../../src/protocol/proposal-facts.js";
import { builtDist } from "../helpers/build.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { freePort, type RunnerProcess, type ServeProcess, spawnCli, spawnRunner, spawnServe } from "../helpers/process.js";
import { RUNNER_CLAIM } from "../helpers/runner-claim.js";
import { eventually, tempDir } from "../helpers/server.js";

/** What a `spool runner` printed of the commands it ran: each start and end, in the order it printed them. */
function commandLines(output: string): { kind: "start" | "end"; key: string; text: string }[] {
  const lines: { kind: "start" | "end"; key: string; text: string }[] = [];
  for (const line of output.split("\n")) {
    const m = /^\S+Z (\S+) (log:\/\/\S+) (\$|→) (.*)$/.exec(line);
    if (m) lines.push({ kind: m[3] === "$" ? "start" : "end", key: `${m[1]} ${m[2]}`, text: m[4]! });
  }
  return lines;
}

/**
 * Runner pools across two `spool serve` processes on one PostgreSQL database: ten `spool runner` processes in two
 * pools (five each, half attached to each server), 500 commands accepted through clients of both servers, a runner
 * SIGKILLed mid-command, a drain, and a queue that outlives its server's restart.
 */
describeWithInfra("postgres", "runner pools on two servers sharing PostgreSQL", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let a: ServeProcess;
  let b: ServeProcess;
  let portA: number;
  const homeA = tempDir("spool-pool-a-");
  const homeB = tempDir("spool-pool-b-");
  const root = tempDir("spool-pool-root-");
  const tokenFile = join(tempDir(), "token");
  const token = "pool-team-token-0123456789abcdef0123456789abcdef";
  const clients: SpoolClient[] = [];
  const runners = new Map<string, RunnerProcess>();
  const pools: Record<string, "blue" | "green"> = {};
  const capacity = { blue: 2, green: 1 } as const;
  let onA: SpoolClient;
  let onB: SpoolClient;

  const serve = (home: string, port: number) =>
    spawnServe(["--port", String(port), "--home", home, "--database", db.url, "--no-local-runner"], {
      SPOOL_TOKEN_FILE: tokenFile,
      SPOOL_RUNNER_GRACE_MS: "2000",
    });
  const clientOf = async (server: ServeProcess, name: string) => {
    const client = await SpoolClient.connect(server.url, { token });
    await client.initialize("team", { root, client: { name, version: "1" } });
    clients.push(client);
    return client;
  };
  const runnerToken = async (name: string) => {
    const file = join(tempDir(), `${name}.token`);
    writeFileSync(file, `${(await onA.call("token/create", { name, role: "runner", projects: ["team"] })).token}\n`, { mode: 0o600 });
    return file;
  };
  const startRunner = async (name: string, file: string, servers: string, labels: string[], cap: number) => {
    const runner = await spawnRunner([
      ...["--server", servers, "--token-file", file, "--project", "team", "--name", name, "--backend", "local", "--sandbox", "off"],
      ...["--state-dir", tempDir(), "--capacity", String(cap), ...labels.flatMap((l) => ["--label", l])],
    ]);
    runners.set(name, runner);
    return runner;
  };
  const propose = async (client: SpoolClient, run: string, command: string, runner: unknown) =>
    (await client.call("proposal/create", { run, tool: "sh", command, sandbox: "full", runner } as any)) as { path: string };
  const accept = (client: SpoolClient, run: string, path: string) => client.call("run/resolve", { run, path, decision: "accept" }) as Promise<any>;
  /** Resolves with each `stream/finished` of `paths` (run + path), as `client` hears them (from every server). */
  const finishedAll = (client: SpoolClient, keys: Set<string>) => {
    const seen = new Map<string, any>();
    return new Promise<Map<string, any>>((resolve) => {
      const off = client.on("stream/finished", (p: any) => {
        const key = `${p.run} ${p.path}`;
        if (!keys.has(key)) return;
        seen.set(key, p);
        if (seen.size === keys.size) {
          off();
          resolve(seen);
        }
      });
    });
  };

  beforeAll(async () => {
    // Twelve processes on a small machine: run the compiled sources, not the loader.
    await builtDist();
    db = await freshDatabase();
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const config = {
      pools: {
        blue: { labels: { pool: "blue" }, principals: ["blue-ci"] },
        green: { labels: { pool: "green" }, principals: ["green-ci"] },
        violet: { labels: { pool: "violet" }, principals: ["violet-ci"] },
      },
    };
    for (const home of [homeA, homeB]) {
      mkdirSync(home, { recursive: true, mode: 0o700 });
      writeFileSync(join(home, "config.json"), JSON.stringify(config), { mode: 0o600 });
    }
    portA = await freePort();
    [a, b] = await Promise.all([serve(homeA, portA), serve(homeB, 0)]);
    onA = await clientOf(a, "pools-a");
    onB = await clientOf(b, "pools-b");
    const files = { blue: await runnerToken("blue-ci"), green: await runnerToken("green-ci") };
    const starts: Promise<unknown>[] = [];
    for (const pool of ["blue", "green"] as const) {
      for (let i = 0; i < 5; i++) {
        const name = `${pool}-${i}`;
        pools[name] = pool;
        // Half first try A, half B: each pool has runners on both servers.
        const servers = i % 2 === 0 ? `${a.url},${b.url}` : `${b.url},${a.url}`;
        starts.push(startRunner(name, files[pool], servers, [`pool=${pool}`], capacity[pool]));
      }
    }
    await Promise.all(starts);
  }, 240_000);

  afterAll(async () => {
    for (const client of clients) if (!client.closed) client.close();
    for (const runner of runners.values()) await runner.stop().catch(() => undefined);
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  it("500 commands accepted through both servers each run once, on a runner of their pool, never more at once on a runner than its capacity", async () => {
    const runs = Array.from({ length: 10 }, (_, i) => `r${i}`);
    for (const run of runs) await onA.call("run/create", { alias: run });
    const total = 500;
    const planned = Array.from({ length: total }, (_, i) => ({ i, run: runs[i % runs.length]!, pool: i % 2 === 0 ? "blue" : "green" }));
    const keys = new Set<string>();
    const poolOf = new Map<string, string>();
    let next = 0;
    const submitted: { key: string; pool: string }[] = [];
    const worker = async (w: number) => {
      for (let job = next++; job < total; job = next++) {
        const { i, run, pool } = planned[job]!;
        // Proposed through one server, accepted through the other, alternately.
        const [by, decider] = (i + w) % 2 === 0 ? [onA, onB] : [onB, onA];
        const { path } = await propose(by, run, `echo c${i}`, { pool });
        submitted.push({ key: `${run} ${path}`, pool });
        await accept(decider, run, path);
      }
    };
    // Every finish is heard on A, from whichever server its runner is attached to; matched with the keys afterwards.
    const finishes = new Map<string, any>();
    const allDone = new Promise<void>((resolve) => {
      const off = onA.on("stream/finished", (p: any) => {
        finishes.set(`${p.run} ${p.path}`, p);
        if (finishes.size >= total) {
          off();
          resolve();
        }
      });
    });
    const started = Date.now();
    await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
    await allDone;
    const elapsed = Date.now() - started;
    for (const s of submitted) {
      keys.add(s.key);
      poolOf.set(s.key, s.pool);
    }
    expect(keys.size).toBe(total);
    for (const key of keys) expect(finishes.get(key), key).toMatchObject({ status: ENTRY.done, outcome: "completed", exit_code: 0 });
    // What the runners ran, from their own lines: each command once, on a runner of its pool, within its capacity.
    const ranOn = new Map<string, string[]>();
    for (const [name, runner] of runners) {
      let at = 0;
      let most = 0;
      for (const line of commandLines(runner.output())) {
        if (!keys.has(line.key)) continue;
        if (line.kind === "start") {
          ranOn.set(line.key, [...(ranOn.get(line.key) ?? []), name]);
          most = Math.max(most, ++at);
        } else at--;
      }
      expect(most, `${name} at once`).toBeLessThanOrEqual(capacity[pools[name]!]);
    }
    for (const key of keys) {
      const on = ranOn.get(key) ?? [];
      expect(on, key).toHaveLength(1);
      expect(pools[on[0]!], key).toBe(poolOf.get(key));
    }
    // Every runner took part: the work spread over both servers' runners.
    for (const name of runners.keys())
      expect(
        [...ranOn.values()].some((on) => on[0] === name),
        name,
      ).toBe(true);
    process.stdout.write(`pools: ${total} commands through 10 runners in ${elapsed} ms\n`);
  }, 480_000);

  it("a runner SIGKILLed mid-command: its command is reported lost and never run again, and the queue behind it moves on", async () => {
    await onA.call("run/create", { alias: "kill" });
    // Every green runner (capacity 1) busy with a long command; more green commands wait behind them.
    const long: string[] = [];
    const startedOn = new Map<string, string>();
    const fiveStarted = new Promise<void>((resolve) => {
      const off = onA.on("stream/started", (p: any) => {
        if (p.run !== "kill") return;
        startedOn.set(p.path, p.runner);
        if (startedOn.size === 5) {
          off();
          resolve();
        }
      });
    });
    for (let i = 0; i < 5; i++) {
      const { path } = await propose(onA, "kill", `sleep 20; echo long-${i}`, { pool: "green" });
      await accept(onB, "kill", path);
      long.push(path);
    }
    await fiveStarted;
    const waiting: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { path } = await propose(onB, "kill", `echo after-${i}`, { pool: "green" });
      expect((await accept(onA, "kill", path)).queued).toMatchObject({ pool: "pool:green" });
      waiting.push(path);
    }
    const victimPath = long[0]!;
    const victim = startedOn.get(victimPath)!;
    const lost = onA.next("stream/finished", (p: any) => p.run === "kill" && p.path === victimPath, 30_000);
    runners.get(victim)!.child.kill("SIGKILL");
    expect(await lost).toMatchObject({ status: ENTRY.cancelled, reason: expect.stringMatching(/runner lost/) });
    // The others are cancelled: their runners free up and take the queue, in order; the dead one takes nothing.
    const after = finishedAll(onA, new Set(waiting.map((p) => `kill ${p}`)));
    for (const path of long.slice(1)) await onB.call("stream/cancel", { run: "kill", path, reason: "make room" });
    const ended = await after;
    for (const path of waiting) expect(ended.get(`kill ${path}`), path).toMatchObject({ status: ENTRY.done });
    const starts = [...runners].flatMap(([name, r]) =>
      commandLines(r.output())
        .filter((l) => l.kind === "start")
        .map((l) => ({ name, key: l.key })),
    );
    // The lost command ran once, where it was taken, and nowhere again.
    expect(starts.filter((s) => s.key === `kill ${victimPath}`).map((s) => s.name)).toEqual([victim]);
    for (const path of waiting) expect(starts.filter((s) => s.key === `kill ${path}`).map((s) => s.name)).not.toContain(victim);
    expect((await onA.call("runner/queue", {})).queued).toEqual([]);
    runners.delete(victim);
  }, 120_000);

  it("a drained runner takes nothing new while its running command finishes (spool runners drain --wait)", async () => {
    await onB.call("run/create", { alias: "drain" });
    // A command for blue-0 itself that runs until the test lets it end; blue-0 is drained meanwhile.
    const flag = join(tempDir(), "go");
    const { path: busy } = await propose(onB, "drain", `while [ ! -e ${flag} ]; do sleep 0.05; done; echo drained-ok`, "blue-0");
    const busyDone = finishedAll(onA, new Set([`drain ${busy}`]));
    const running = onB.next("stream/started", (p: any) => p.path === busy, 20_000);
    await accept(onB, "drain", busy);
    await running;
    const cli = spawnCli(["runners", "drain", "blue-0", "--wait", "--server", a.url, "--token-file", tokenFile, "--project", "team"]);
    await cli.waitFor(/draining blue-0: it takes nothing new; 1 command running/, "stdout", 60_000);
    const listed = (await onA.call("runner/list", {})).runners.find((r: any) => r.name === "blue-0");
    expect(listed).toMatchObject({ state: "draining", running: 1, capacity: 2 });
    // New blue work goes to the other blue runners while it drains (blue-0 has a free slot, and takes nothing).
    const blue: string[] = [];
    for (let i = 0; i < 8; i++) blue.push((await propose(onA, "drain", `echo blue-${i}`, { pool: "blue" })).path);
    const done = finishedAll(onA, new Set(blue.map((p) => `drain ${p}`)));
    for (const path of blue) await accept(onA, "drain", path);
    for (const [, p] of await done) expect(p).toMatchObject({ status: ENTRY.done });
    // Its running command finishes as usual, and the CLI returns once it runs nothing.
    writeFileSync(flag, "");
    expect((await busyDone).get(`drain ${busy}`)).toMatchObject({ status: ENTRY.done });
    expect((await cli.exitsWithin(30_000)).code).toBe(0);
    expect(cli.stdout()).toContain("blue-0 is drained: it runs nothing");
    const took = commandLines(runners.get("blue-0")!.output()).filter((l) => l.kind === "start" && l.key.startsWith("drain "));
    expect(took.map((l) => l.key)).toEqual([`drain ${busy}`]);
    await onA.call("runner/drain", { name: "blue-0", drain: false });
  }, 120_000);

  it("queued commands outlive their server's restart in order, and one can be cancelled there", async () => {
    await onA.call("run/create", { alias: "later" });
    const queued: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { path } = await propose(onA, "later", `echo violet-${i}`, { pool: "violet" });
      // No runner of the pool: the configuration names its principal, so each waits for one.
      expect((await accept(onA, "later", path)).queued).toEqual({ pool: "pool:violet", position: i + 1 });
      queued.push(path);
    }
    onA.close();
    await a.stop();
    a = await serve(homeA, portA);
    const again = await clientOf(a, "pools-a-again");
    onA = again;
    expect((await again.call("runner/queue", { pool: "pool:violet" })).queued.map((q: any) => [q.path, q.position])).toEqual(
      queued.map((path, i) => [path, i + 1]),
    );
    await again.call("stream/cancel", { run: "later", path: queued[1]!, reason: "not this one" });
    expect((await again.call("runner/queue", {})).queued.map((q: any) => q.path)).toEqual([queued[0], queued[2]]);
    // A runner of the pool attaches: it takes the two left, the oldest first; the cancelled one never runs.
    const both = finishedAll(again, new Set([queued[0]!, queued[2]!].map((p) => `later ${p}`)));
    const violet = await startRunner("violet-0", await runnerToken("violet-ci"), `${b.url},${a.url}`, ["pool=violet"], 1);
    await both;
    const starts = commandLines(violet.output()).filter((l) => l.kind === "start");
    expect(starts.map((l) => l.key)).toEqual([`later ${queued[0]}`, `later ${queued[2]}`]);
    const cancelled = await again.call("entry/get", { run: "later", path: queued[1]! });
    expect(cancelled.producer?.state).toBe("cancelled");
  }, 180_000);

  it("proposed on B for a runner attached to A, the runner's claim is recorded; another principal's runner under its name never takes it", async () => {
    const dockToken = (await onB.call("token/create", { name: "dock-ci", role: "runner", projects: ["team"] })).token;
    const dock = await SpoolClient.connect(a.url, { token: dockToken });
    await dock.initialize("team", { root, client: { name: "dock", version: "1" } });
    clients.push(dock);
    await dock.call("runner/attach", { name: "dock", backend: "local", sandbox: RUNNER_CLAIM });
    await onB.call("run/create", { alias: "dock" });
    const { path } = await propose(onB, "dock", "echo for dock", "dock");
    // B records what A's runner claims, and who attached it, though it is not attached to B.
    const shown = proposalFacts((await onB.call("entry/get", { run: "dock", path })).attributes);
    expect(shown.runnerClaim).toMatchObject({ attachedBy: "dock-ci", attachedAs: "runner" });
    dock.close();
    const adminToken = (await onB.call("token/create", { name: "dock-admin", role: "admin" })).token;
    const squat = await SpoolClient.connect(b.url, { token: adminToken });
    await squat.initialize("team", { root, client: { name: "squat", version: "1" } });
    clients.push(squat);
    let execs = 0;
    squat.handle("runner/exec", () => {
      execs++;
      return { started: true, target: { backend: "local" } };
    });
    await eventually(async () => !(await onB.call("runner/list", {})).runners.some((r: any) => r.name === "dock"), 10_000, "dock to leave");
    await squat.call("runner/attach", { name: "dock", backend: "local", sandbox: RUNNER_CLAIM });
    const refused = await accept(onB, "dock", path).catch((error: any) => error);
    expect(refused.data).toMatchObject({ code: "FACTS_CHANGED" });
    expect(refused.message).toContain('attached by admin "dock-admin"');
    expect(execs).toBe(0);
    expect((await onB.call("entry/get", { run: "dock", path })).status).toBe(ENTRY.proposed);
  }, 60_000);
});
