// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and CLI JSON
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { runCli } from "../helpers/process.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/** A table as printRows writes it: each row's cells by the header's column starts. */
function table(text: string): Record<string, string>[] {
  const [header, ...lines] = text.trimEnd().split("\n");
  const names = header!.split(/\s{2,}/);
  const starts = names.map((name) => header!.indexOf(name));
  return lines.map((line) => Object.fromEntries(names.map((name, i) => [name, line.slice(starts[i], starts[i + 1] ?? line.length).trim()])));
}

/**
 * `spool runners` as the fleet view (runner pools): per pool its runners, capacity, running, queued and draining; each
 * runner's state (claiming, draining, gone) and load; the queue in order; drain and undrain; and what it refuses.
 */
describe("spool runners: the fleet", () => {
  let ts: TestServer;
  let admin: SpoolClient;
  let dir: string;
  const hands: SpoolClient[] = [];
  const spool = (args: string[]) =>
    runCli(args, { SPOOL_SERVER: ts.server.url, SPOOL_TOKEN_FILE: ts.server.config.tokenFile, SPOOL_HOME: ts.home, SPOOL_PROJECT: "" }, dir, 60_000);

  /** A runner of capacity 1 the test ends commands for by hand; `sent` are the paths it was sent. */
  const runner = async (name: string) => {
    const client = await ts.client();
    await client.initialize(undefined, { root: dir });
    const sent: string[] = [];
    client.handle("runner/exec", (params: any) => {
      sent.push(params.path);
      return { started: true, target: { backend: "local", pid: process.pid } };
    });
    await client.call("runner/attach", { name, backend: "local", labels: { os: "linux" }, capacity: 1 });
    hands.push(client);
    return { client, sent };
  };

  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false, pools: { linux: { labels: { os: "linux" }, principals: null } } });
    dir = join(tempDir("spool-fleet-"), "fleet");
    mkdirSync(join(dir, ".git"), { recursive: true });
    admin = await ts.client();
    await admin.initialize(undefined, { root: dir });
  }, 60_000);
  afterAll(async () => {
    for (const c of hands) c.close();
    await ts?.stop();
  });

  it("pools, runners, the queue in order with its place and age, drain and undrain; --json says the same", async () => {
    const one = await runner("lin-1");
    const two = await runner("lin-2");
    await admin.call("run/create", { alias: "fleet" });
    const paths: string[] = [];
    for (const command of ["echo a", "echo b", "echo c"]) {
      const { path } = await admin.call("proposal/create", { run: "fleet", tool: "sh", command, sandbox: "full", runner: { pool: "linux" } } as any);
      await admin.call("run/resolve", { run: "fleet", path, decision: "accept" });
      paths.push(path);
    }
    // spool approve of a command whose pool is all busy says it waits, and where.
    const last = await admin.call("proposal/create", { run: "fleet", tool: "sh", command: "echo d", sandbox: "full", runner: { pool: "linux" } } as any);
    const approved = await spool(["approve", "fleet", last.path]);
    expect(approved.code, approved.err).toBe(0);
    expect(approved.out).toContain(`accepted ${last.path}: queued, 2 in line for pool linux; follow it with`);
    paths.push(last.path);
    // Two run (one on each), two wait in the pool's queue.
    expect(one.sent.length + two.sent.length).toBe(2);

    const listed = await spool(["runners"]);
    expect(listed.code, listed.err).toBe(0);
    const [poolsText, runnersText] = listed.out.split("\n\n");
    expect(table(poolsText!)).toEqual([
      { pool: "pool linux", runners: "lin-1, lin-2", capacity: "2", running: "2", queued: "2", draining: "0", "waiting since": expect.stringMatching(/ ago$/) },
    ]);
    const rows = table(runnersText!);
    for (const name of ["lin-1", "lin-2"])
      expect(rows.find((r) => r.name === name)).toMatchObject({ state: expect.stringMatching(/^claiming, attached /), load: "1 of 1", pools: "linux" });
    const pools = JSON.parse((await spool(["runners", "pools", "--json"])).out);
    expect(pools).toMatchObject([{ key: "pool:linux", configured: true, runners: ["lin-1", "lin-2"], capacity: 2, running: 2, queued: 2, draining: 0 }]);

    // The queue, in the order runners take it; spool show says each queued command's place and how long it has waited.
    const queue = await spool(["runners", "queue"]);
    expect(queue.code, queue.err).toBe(0);
    expect(table(queue.out).map((r) => [r["#"], r.pool, r.path])).toEqual([
      ["1", "pool linux", paths[2]],
      ["2", "pool linux", paths[3]],
    ]);
    // A pool's queue by its key or by its name alone.
    const places = (out: string) => table(out).map((r) => [r["#"], r.pool, r.path]);
    for (const pool of ["pool:linux", "linux"]) expect(places((await spool(["runners", "queue", pool])).out), pool).toEqual(places(queue.out));
    const show = await spool(["show", "fleet"]);
    expect(show.code, show.err).toBe(0);
    expect(show.out).toMatch(/queued: 1st in line for pool linux, waiting \d+s \(waiting for a free runner\)/);
    expect(show.out).toMatch(/queued: 2nd in line for pool linux, waiting \d+s/);

    // Drained, lin-1 finishes what it runs and takes nothing new: the queue goes to lin-2 only.
    const drained = await spool(["runners", "drain", "lin-1"]);
    expect(drained.code, drained.err).toBe(0);
    expect(drained.out).toBe("draining lin-1: it takes nothing new; 1 command running\n");
    const json = JSON.parse((await spool(["runners", "--json"])).out);
    expect(json.find((r: any) => r.name === "lin-1")).toMatchObject({ state: "draining", running: 1, capacity: 1 });
    expect(table((await spool(["runners"])).out.split("\n\n")[1]!).find((r) => r.name === "lin-1")?.state).toMatch(/^draining, attached /);
    expect(JSON.parse((await spool(["runners", "pools", "--json"])).out)[0]).toMatchObject({ draining: 1, queued: 2 });
    await one.client.call("stream/completed", { run: "fleet", path: one.sent[0]!, exit_code: 0 });
    await two.client.call("stream/completed", { run: "fleet", path: two.sent[0]!, exit_code: 0 });
    await expect.poll(() => two.sent.length, { timeout: 10_000 }).toBe(2);
    expect(two.sent[1]).toBe(paths[2]);
    expect(one.sent).toHaveLength(1);
    // Undrained, it claims again: the last queued command goes to it.
    const undrained = await spool(["runners", "undrain", "lin-1"]);
    expect(undrained.code, undrained.err).toBe(0);
    expect(undrained.out).toBe("lin-1 claims again (0 commands running)\n");
    await expect.poll(() => one.sent.length, { timeout: 10_000 }).toBe(2);
    expect(one.sent[1]).toBe(paths[3]);
    expect((await spool(["runners", "queue"])).out).toBe("no command waits for a runner\n");
    for (const [hand, path] of [
      [one, paths[3]],
      [two, paths[2]],
    ] as const)
      await hand.client.call("stream/completed", { run: "fleet", path: path!, exit_code: 0 });

    // A runner that went away with a command running is gone, its name held.
    const three = await runner("lin-3");
    const { path } = await admin.call("proposal/create", { run: "fleet", tool: "sh", command: "sleep", sandbox: "full", runner: "lin-3" });
    await admin.call("run/resolve", { run: "fleet", path, decision: "accept" });
    await expect.poll(() => three.sent.length, { timeout: 10_000 }).toBe(1);
    three.client.close();
    await expect
      .poll(async () => JSON.parse((await spool(["runners", "--json"])).out).find((r: any) => r.name === "lin-3")?.state, { timeout: 10_000 })
      .toBe("gone");
    expect(table((await spool(["runners"])).out.split("\n\n")[1]!).find((r) => r.name === "lin-3")?.state).toMatch(/^gone \(name held \d+s\)$/);
  }, 120_000);

  it("refuses what names nothing: an unknown subcommand or a missing name is a usage error (2), an unknown runner NOT_FOUND (4); nothing changes", async () => {
    const unknown = await spool(["runners", "drian", "lin-1"]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown subcommand "drian"');
    const bare = await spool(["runners", "drain"]);
    expect(bare.code).toBe(2);
    expect(bare.err).toContain("spool runners drain takes a runner's NAME");
    const extra = await spool(["runners", "pools", "linux"]);
    expect(extra.code).toBe(2);
    const wait = await spool(["runners", "undrain", "lin-1", "--wait"]);
    expect(wait.code).toBe(2);
    // A queue of a pool nobody configured is NOT_FOUND naming the configured ones, not an empty queue; a name of no
    // queue's form is refused.
    const nosuch = await spool(["runners", "queue", "nosuch"]);
    expect(nosuch.code, nosuch.err).toBe(4);
    expect(nosuch.err).toContain('No pool named "nosuch" is configured (configured: linux)');
    const garbled = await spool(["runners", "queue", "pools:linux"]);
    expect(garbled.code, garbled.err).toBe(2);
    expect(garbled.err).toContain('"pools:linux" is not a queue\'s name: pool:NAME, labels:k=v,… or runner:NAME');
    const missing = await spool(["runners", "drain", "no-such"]);
    expect(missing.code, missing.err).toBe(4);
    expect(missing.err).toContain("no-such");
    expect(JSON.parse((await spool(["runners", "--json"])).out).some((r: any) => r.state === "draining")).toBe(false);
  }, 60_000);
});
