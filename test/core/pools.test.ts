// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/core/status.js";
import { factsText, proposalFacts } from "../../src/protocol/proposal-facts.js";
import { runnerShown } from "../../src/protocol/shown-state.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * A runner the test drives by hand: it attaches with labels and a capacity, records each runner/exec it is sent and
 * answers it started (or, given `fails`, that it could not start it, with that error); the test ends each command
 * (stream/completed) when it likes. What it was sent is what ran.
 */
class HandRunner {
  readonly execs: { run: string; path: string; command: string; at: number }[] = [];
  readonly #waiters: (() => void)[] = [];
  constructor(
    readonly client: SpoolClient,
    readonly name: string,
    fails: string | null = null,
  ) {
    client.handle("runner/exec", (params: any) => {
      this.execs.push({ run: params.run, path: params.path, command: params.command, at: Date.now() });
      for (const w of this.#waiters.splice(0)) w();
      return fails === null ? { started: true, target: { backend: "local", pid: process.pid } } : { started: false, error: fails };
    });
  }

  /** Resolves once it has been sent `n` commands in all. */
  async sent(n: number): Promise<void> {
    while (this.execs.length < n) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  complete(run: string, path: string): Promise<unknown> {
    return this.client.call("stream/completed", { run, path, exit_code: 0 });
  }
}

describe("runner pools on one server", () => {
  let ts: TestServer;
  let admin: SpoolClient;
  let ciToken: string;
  let otherToken: string;
  const root = tempDir("spool-pools-");

  const runnerOf = async (
    token: string,
    name: string,
    labels: Record<string, string>,
    capacity?: number,
    fails: string | null = null,
    attach: { root?: string } = {},
  ) => {
    const client = await SpoolClient.connect(ts.server.url, { token });
    await client.initialize("pools", { root });
    const runner = new HandRunner(client, name, fails);
    await client.call("runner/attach", { name, backend: "local", labels, ...(capacity ? { capacity } : {}), ...attach });
    return runner;
  };
  const propose = async (run: string, command: string, runner: unknown) =>
    (await admin.call("proposal/create", { run, tool: "sh", command, sandbox: "full", runner } as any)) as any;
  const accept = (run: string, path: string) => admin.call("run/resolve", { run, path, decision: "accept" }) as Promise<any>;
  const producer = async (run: string, path: string) => ((await admin.call("entry/get", { run, path })) as any).producer;

  beforeAll(async () => {
    ts = await startTestServer({
      localRunner: false,
      pools: { linux: { labels: { os: "linux" }, principals: ["ci"] }, arm: { labels: { arch: "arm64" }, principals: ["ci"] } },
    } as any);
    admin = await ts.client();
    await admin.initialize("pools", { root });
    ciToken = (await admin.call("token/create", { name: "ci", role: "runner" })).token;
    otherToken = (await admin.call("token/create", { name: "other", role: "runner" })).token;
  });
  afterAll(() => ts.stop());

  it("a pool's command goes to a free runner of it, waits in the queue while all are busy, and the next free one takes it", async () => {
    const a = await runnerOf(ciToken, "lin-a", { os: "linux" }, 1);
    const b = await runnerOf(ciToken, "lin-b", { os: "linux" }, 1);
    const mac = await runnerOf(ciToken, "mac-1", { os: "mac" }, 4);
    await admin.call("run/create", { alias: "p1" });
    const proposals: any[] = [];
    for (let i = 0; i < 3; i++) proposals.push(await propose("p1", `echo ${i}`, { labels: { os: "linux" } }));
    // The facts name the pool, how many are attached, who attached them and what they have in common.
    const entry = await admin.call("entry/get", { run: "p1", path: proposals[0].path });
    expect((await producer("p1", proposals[0].path)).pool).toMatchObject({ name: "os=linux", attached: 2, principals: ["ci"], backends: ["local"] });
    expect(factsText(proposalFacts(entry.attributes))).toMatch(/runner\s+pool os=linux \(2 attached, by "ci"; local; claims full; network not said\)/);
    const first = await accept("p1", proposals[0].path);
    const second = await accept("p1", proposals[1].path);
    expect([first.runner, second.runner].sort()).toEqual(["lin-a", "lin-b"]);
    // Both busy: the third waits in the pool's queue, its channels queued, its state queued on every client.
    const third = await accept("p1", proposals[2].path);
    expect(third).toMatchObject({ runner: null, queued: { pool: "labels:os=linux", position: 1 } });
    expect(third.channels.map((c: any) => c.status)).toEqual([ENTRY.queued, ENTRY.queued]);
    expect((await producer("p1", proposals[2].path)).state).toBe("queued");
    // Where it waits, on every client's reads (entry/get, entry/list): its queue, its place in line, since when.
    const place = (await producer("p1", proposals[2].path)).queue;
    expect(place).toMatchObject({ pool: "labels:os=linux", position: 1 });
    expect(place.since).toBeGreaterThan(Date.now() - 60_000);
    const listed = (await admin.call("entry/list", { run: "p1" })).entries.find((e: any) => e.path === proposals[2].path);
    expect(listed?.producer?.queue).toEqual(place);
    expect((await producer("p1", proposals[0].path)).queue ?? null).toBeNull();
    expect((await admin.call("runner/queue", {})).queued).toMatchObject([{ run: "p1", path: proposals[2].path, pool: "labels:os=linux", position: 1 }]);
    await a.sent(1);
    await b.sent(1);
    // One ends: its runner takes the queued one.
    const freed = first.runner === "lin-a" ? a : b;
    const started = admin.next("stream/started", (p: any) => p.path === proposals[2].path, 10_000);
    await freed.complete("p1", proposals[0].path);
    expect(await started).toMatchObject({ runner: freed.name });
    await freed.sent(2);
    expect(freed.execs[1]!.path).toBe(proposals[2].path);
    expect((await producer("p1", proposals[2].path)).state).toBe("running");
    expect(mac.execs).toEqual([]);
    for (const r of [a, b, mac]) r.client.close();
  });

  it("a pool with no runner attached is refused at proposal time, unless the configuration names its principals", async () => {
    await admin.call("run/create", { alias: "p2" });
    await expect(propose("p2", "true", { labels: { os: "plan9" } })).rejects.toMatchObject({
      errorCode: "NO_RUNNER",
      message: /No runner of the labels os=plan9/,
    });
    await expect(propose("p2", "true", { pool: "nope" })).rejects.toMatchObject({ errorCode: "NOT_FOUND", message: /configured: arm, linux/ });
    // A configured pool naming its principals: it waits for one of theirs, and the facts say so.
    const { path } = await propose("p2", "uname -m", { pool: "arm" });
    const entry = await admin.call("entry/get", { run: "p2", path });
    expect(factsText(proposalFacts(entry.attributes))).toMatch(/runner\s+pool arm \(none attached now: it waits for a runner attached by "ci"\)/);
    const accepted = await accept("p2", path);
    expect(accepted.queued).toEqual({ pool: "pool:arm", position: 1 });
    // Another principal's runner with the pool's labels is not in it, and never takes the command.
    const squatter = await runnerOf(otherToken, "arm-x", { arch: "arm64" }, 2);
    const pools = (await admin.call("runner/pools", {})).pools;
    expect(pools.find((p: any) => p.key === "pool:arm")).toMatchObject({ runners: [], queued: 1 });
    // Its own runner does, at once.
    const started = admin.next("stream/started", (p: any) => p.path === path, 10_000);
    const own = await runnerOf(ciToken, "arm-1", { arch: "arm64" }, 1);
    expect(await started).toMatchObject({ runner: "arm-1" });
    expect(squatter.execs).toEqual([]);
    expect(own.execs.map((e) => e.path)).toEqual([path]);
    own.client.close();
    squatter.client.close();
  });

  it("a queued command can be cancelled: it leaves the queue and never runs", async () => {
    const r = await runnerOf(ciToken, "lin-c", { os: "linux" }, 1);
    await admin.call("run/create", { alias: "p3" });
    const busy = await propose("p3", "sleep 1", { pool: "linux" });
    const waiting = await propose("p3", "echo never", { pool: "linux" });
    await accept("p3", busy.path);
    const queued = await accept("p3", waiting.path);
    expect(queued.queued.pool).toBe("pool:linux");
    await admin.call("stream/cancel", { run: "p3", path: waiting.path, reason: "not needed" });
    expect((await producer("p3", waiting.path)).state).toBe("cancelled");
    expect((await admin.call("runner/queue", { pool: "pool:linux" })).queued).toEqual([]);
    await r.sent(1);
    await r.complete("p3", busy.path);
    // Freed, it finds nothing to take: the cancelled command never reached it.
    const later = await propose("p3", "echo after", { pool: "linux" });
    await accept("p3", later.path);
    await r.sent(2);
    expect(r.execs.map((e) => e.path)).toEqual([busy.path, later.path]);
    r.client.close();
  });

  it("a runner whose starts fail rests, longer at each failure in a row, and the pool's other runner takes the queue meanwhile", async () => {
    // Attached first, with the same load: a pool's accept chooses it first.
    const bad = await runnerOf(ciToken, "zone-bad", { zone: "r" }, 1, "the Docker engine does not answer");
    const good = await runnerOf(ciToken, "zone-good", { zone: "r" }, 1);
    await admin.call("run/create", { alias: "p-rest" });
    const paths: string[] = [];
    for (let i = 0; i < 6; i++) paths.push((await propose("p-rest", `echo ${i}`, { labels: { zone: "r" } })).path);
    const placed: any[] = [];
    for (const path of paths) placed.push(await accept("p-rest", path));
    // The first went to the bad runner and did not start; resting, it was not chosen again: the second went to the
    // good one, and the rest wait in the pool's queue, the reason saying so.
    expect(bad.execs[0]!.path).toBe(paths[0]);
    expect(await producer("p-rest", paths[0]!)).toMatchObject({ state: "aborted", reason: "failed to start: the Docker engine does not answer" });
    expect(placed[1].runner).toBe("zone-good");
    // While it rests, the rest wait in the queue. A machine so busy that the accepts outlasted its 1-s rest lets it
    // take one again meanwhile (and fail it): those went to it, never to the busy good one, and the others queued.
    const outran = bad.execs.length > 1;
    if (!outran) expect(placed.slice(2).every((p) => p.queued?.pool === "labels:zone=r")).toBe(true);
    else expect(placed.slice(2).every((p) => p.queued?.pool === "labels:zone=r" || p.runner === "zone-bad")).toBe(true);
    // Every client shows it resting (runner/list, and the words the CLI and the page take from runnerShown).
    const listed = (await admin.call("runner/list", {})).runners as any[];
    const shownBad = listed.find((r) => r.name === "zone-bad");
    // One failed start, or two when the accepts and this list took longer than its first 1 s rest (a busy machine).
    expect(shownBad).toMatchObject({ state: "claiming", resting: { failedStarts: expect.any(Number), until: expect.any(Number) } });
    const failed = shownBad.resting.failedStarts as number;
    expect(failed).toBeGreaterThanOrEqual(1);
    const words = failed === 1 ? "1 failed start" : `${failed} failed starts`;
    expect(runnerShown(shownBad, listed)).toMatchObject({
      resting: true,
      stateWord: expect.stringMatching(new RegExp(`^claiming, resting \\d+s after ${words}$`)),
    });
    expect(listed.find((r) => r.name === "zone-good").resting).toBeUndefined();
    // Rested (1 s), it takes a queued command again, fails it, and rests twice as long.
    await bad.sent(2);
    // The good runner takes what is left, one at a time, as each of its commands ends.
    for (let done = 0; ; done++) {
      const queued = (await admin.call("runner/queue", {})).queued.filter((q: any) => paths.includes(q.path));
      if (queued.length === 0 && done === good.execs.length) break;
      await good.sent(done + 1);
      await good.complete("p-rest", good.execs[done]!.path);
    }
    // Each command went to one runner once: the bad one failed two (more the longer this took: 1 + 2 s, then 4 s).
    const ran = [...bad.execs, ...good.execs].map((e) => e.path).sort();
    expect(ran).toEqual([...paths].sort());
    for (const e of good.execs) expect((await producer("p-rest", e.path)).state).toBe("done");
    // Each rest twice the one before: 1 s after the first failure, 2 s after the second, …
    for (let i = 1; i < bad.execs.length; i++) expect(bad.execs[i]!.at - bad.execs[i - 1]!.at).toBeGreaterThanOrEqual(1_000 * 2 ** (i - 1) - 5);
    bad.client.close();
    good.client.close();
  });

  it("a drained runner takes nothing new while its running command finishes; undrained, it takes the queue", async () => {
    const r = await runnerOf(ciToken, "lin-d", { os: "linux" }, 2);
    await admin.call("run/create", { alias: "p4" });
    const one = await propose("p4", "make", { pool: "linux" });
    await accept("p4", one.path);
    await r.sent(1);
    expect(await admin.call("runner/drain", { name: "lin-d" })).toEqual({ name: "lin-d", state: "draining", running: 1 });
    const listed = (await admin.call("runner/list", {})).runners.find((x: any) => x.name === "lin-d");
    expect(listed).toMatchObject({ state: "draining", running: 1, capacity: 2, pools: ["linux"] });
    const two = await propose("p4", "make again", { pool: "linux" });
    expect((await accept("p4", two.path)).queued).toMatchObject({ pool: "pool:linux" });
    // Its running command finishes as usual; the freed slot takes nothing.
    await r.complete("p4", one.path);
    expect((await producer("p4", one.path)).state).toBe("done");
    expect((await admin.call("runner/queue", {})).queued.map((q: any) => q.path)).toEqual([two.path]);
    expect(r.execs.length).toBe(1);
    const started = admin.next("stream/started", (p: any) => p.path === two.path, 10_000);
    expect(await admin.call("runner/drain", { name: "lin-d", drain: false })).toMatchObject({ state: "claiming" });
    await started;
    expect(r.execs.map((e) => e.path)).toEqual([one.path, two.path]);
    r.client.close();
  });

  it("/metrics has each pool's queued and running commands and its claim latency", async () => {
    const scrape = async () => {
      const response = await fetch(`http://127.0.0.1:${ts.server.port}/metrics`, { headers: { Authorization: `Bearer ${ts.server.token}` } });
      return response.text();
    };
    const value = (text: string, series: string) =>
      Number(
        text
          .split("\n")
          .find((l) => l.startsWith(`${series} `))
          ?.slice(series.length + 1),
      );
    // Runners of the earlier tests left with commands still counted as running (their grace has not ended).
    const running = value(await scrape(), 'spool_pool_running{pool="pool:linux"}') || 0;
    const r = await runnerOf(ciToken, "lin-m", { os: "linux" }, 1);
    await admin.call("run/create", { alias: "pm" });
    const one = await propose("pm", "make one", { pool: "linux" });
    const two = await propose("pm", "make two", { pool: "linux" });
    await accept("pm", one.path);
    await accept("pm", two.path);
    await r.sent(1);
    const busy = await scrape();
    expect(value(busy, 'spool_pool_queued{pool="pool:linux"}')).toBe(1);
    expect(value(busy, 'spool_pool_running{pool="pool:linux"}')).toBe(running + 1);
    // A configured pool with nothing in it has its series at 0.
    expect(value(busy, 'spool_pool_queued{pool="pool:arm"}')).toBe(0);
    const claimed = value(busy, 'spool_pool_claim_seconds_count{pool="pool:linux"}');
    await r.complete("pm", one.path);
    await r.sent(2);
    await r.complete("pm", two.path);
    const after = await scrape();
    expect(value(after, 'spool_pool_claim_seconds_count{pool="pool:linux"}')).toBe(claimed + 1);
    expect(value(after, 'spool_pool_queued{pool="pool:linux"}')).toBe(0);
    expect(after).toContain("# TYPE spool_pool_claim_seconds histogram");
    r.client.close();
  });

  it("a pool whose runners run the project elsewhere (their roots): the card shows each place, and only a runner at one of them takes it", async () => {
    const home = await runnerOf(ciToken, "site-a", { site: "x" }, 1, null, { root: "/srv/checkout" });
    const login = await runnerOf(ciToken, "site-b", { site: "x" }, 1, null, { root: "~" });
    await admin.call("run/create", { alias: "p-roots" });
    const busy = [await propose("p-roots", "echo 1", { labels: { site: "x" } }), await propose("p-roots", "echo 2", { labels: { site: "x" } })];
    const waiting = await propose("p-roots", "pwd", { labels: { site: "x" } });
    const entry = await admin.call("entry/get", { run: "p-roots", path: waiting.path });
    expect(factsText(proposalFacts(entry.attributes))).toMatch(
      new RegExp(`^cwd +/srv/checkout or ~ \\(the project root on its runners, by runner; the server's is ${root}\\)$`, "m"),
    );
    for (const p of busy) await accept("p-roots", p.path);
    await Promise.all([home.sent(1), login.sent(1)]);
    expect((await accept("p-roots", waiting.path)).queued).toMatchObject({ pool: "labels:site=x" });
    // A runner of the same principal and labels at another root is not one the person was shown: it never takes it.
    const elsewhere = await runnerOf(ciToken, "site-c", { site: "x" }, 1, null, { root: "/elsewhere" });
    expect((await admin.call("runner/queue", { pool: "labels:site=x" })).queued.map((q: any) => q.path)).toEqual([waiting.path]);
    // One of the roots shown frees a slot: that one takes it.
    await login.complete("p-roots", login.execs[0]!.path);
    await login.sent(2);
    expect(login.execs[1]!.path).toBe(waiting.path);
    expect(elsewhere.execs).toEqual([]);
    for (const r of [home, login, elsewhere]) r.client.close();
  });

  it("a runner's credential drains only its own runners, a viewer none of another's; an unknown name is NOT_FOUND", async () => {
    const r = await runnerOf(ciToken, "lin-e", { os: "linux" });
    const viewer = await SpoolClient.connect(ts.server.url, { token: (await admin.call("token/create", { name: "watcher", role: "viewer" })).token });
    await viewer.initialize("pools", { root });
    const other = await SpoolClient.connect(ts.server.url, { token: otherToken });
    await other.initialize("pools", { root });
    await expect(other.call("runner/drain", { name: "lin-e" })).rejects.toMatchObject({ errorCode: "NOT_OWNER", message: /belongs to principal "ci"/ });
    await expect(viewer.call("runner/drain", { name: "lin-e" })).rejects.toMatchObject({ errorCode: "NOT_OWNER" });
    await expect(admin.call("runner/drain", { name: "no-such" })).rejects.toMatchObject({ errorCode: "NOT_FOUND" });
    expect((await admin.call("runner/list", {})).runners.find((x: any) => x.name === "lin-e")?.state).toBe("claiming");
    expect(await r.client.call("runner/drain", { name: "lin-e" })).toMatchObject({ state: "draining" });
    for (const c of [r.client, viewer, other]) c.close();
  });
});
