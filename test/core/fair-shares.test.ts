import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

// Fair shares of proposals, over a real `spool serve` with its default limits: one agent cannot fill the disk with
// proposals nobody decides, nor the audit trail with copies of their commands.

/**
 * The database file's bytes. Its write-ahead log is not counted: a log the store reuses (not truncated until writes
 * are quiet and it is past 64 MiB, src/store/sqlite/database.ts), whose pages are copied into the file this measures.
 */
const databaseBytes = (home: string): number => statSync(join(home, "spool.db")).size;

type Refusal = { data?: { code?: string; limit?: string; bound?: number }; message: string };

describe("fair shares of pending proposals", () => {
  let serve: ServeProcess;
  let home: string;
  let admin: SpoolClient;
  const clients: SpoolClient[] = [];
  const agent = async (name: string) => {
    const { token } = await admin.call("token/create", { name, role: "agent" });
    const c = await SpoolClient.connect(serve.url, { token });
    clients.push(c);
    await c.initialize("shares");
    return c;
  };

  beforeAll(async () => {
    home = tempDir();
    const root = tempDir("spool-root-");
    mkdirSync(join(root, "shares"));
    serve = await spawnServe(["--port", String(await freePort()), "--home", home, "--no-local-runner"]);
    admin = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    clients.push(admin);
    await admin.initialize("shares", { root: join(root, "shares") });
  }, 90_000);
  afterAll(async () => {
    for (const c of clients) if (!c.closed) c.close();
    await serve?.stop();
  });

  it("1,000 proposals of 60 KB from one agent: 256 wait, the rest are LIMIT_EXCEEDED naming the bound, and the database grows by less than 20 MB", async () => {
    const flooder = await agent("flooder");
    const runs = ["r1", "r2", "r3", "r4", "r5"];
    for (const alias of runs) await flooder.call("run/create", { alias });
    const before = databaseBytes(home);
    const command = `echo ${"x".repeat(60_000)}`;
    let accepted = 0;
    const refusals = new Map<string, number>();
    let example: Refusal | null = null;
    for (let i = 0; i < 1000; i++) {
      try {
        await flooder.call("proposal/create", { run: runs[i % runs.length]!, tool: "sh", command: `${command} ${i}` });
        accepted++;
      } catch (error) {
        const e = error as Refusal;
        expect(e.data?.code, e.message).toBe("LIMIT_EXCEEDED");
        refusals.set(e.data!.limit!, (refusals.get(e.data!.limit!) ?? 0) + 1);
        if (e.data?.limit === "maxPendingPerPrincipal") example ??= e;
      }
    }
    expect(accepted).toBe(256);
    expect(refusals.get("maxPendingPerPrincipal")).toBeGreaterThan(0);
    expect([...refusals.keys()].every((k) => k === "maxPendingPerPrincipal" || k === "proposalsPerMinute")).toBe(true);
    expect(example!.data).toMatchObject({ bound: 256 });
    expect(example!.message).toMatch(/limits\.maxPendingPerPrincipal: 256.*decide the waiting ones.*spool pending/);
    const grown = databaseBytes(home) - before;
    // 256 commands of 60 KB are 15.4 MB: the entries hold them whole, the trail only their digests and heads
    // (before the bounds: 1,000 entries and 1,000 audit rows of 60 KB, 120 MB).
    expect(grown).toBeLessThan(20 * 1024 * 1024);
    const { events } = await admin.call("audit/list", { project: "shares" });
    const proposals = events.filter((e) => e.action === "proposal" && e.principal === "flooder");
    expect(proposals).toHaveLength(256);
    expect(JSON.stringify(proposals[0]!.detail).length).toBeLessThan(600);
    expect(proposals[0]!.detail).toMatchObject({ commandBytes: 60_007, commandDigest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    // Another principal is not held back by the flooder's share.
    const other = await agent("bystander");
    await other.call("run/create", { alias: "own" });
    await expect(other.call("proposal/create", { run: "own", tool: "sh", command: "echo fine" })).resolves.toMatchObject({ path: expect.any(String) });
  }, 180_000);

  it("a run holds at most 64 waiting proposals; deciding one makes room for the next", async () => {
    const one = await agent("one-run");
    await one.call("run/create", { alias: "busy" });
    const paths: string[] = [];
    for (let i = 0; i < 64; i++) paths.push((await one.call("proposal/create", { run: "busy", tool: "sh", command: `echo ${i}` })).path);
    const refused = one.call("proposal/create", { run: "busy", tool: "sh", command: "echo 65" });
    await expect(refused).rejects.toMatchObject({ data: { code: "LIMIT_EXCEEDED", limit: "maxPendingPerRun", bound: 64, run: "busy" } });
    await expect(refused).rejects.toThrow(/spool approve or spool reject/);
    await admin.call("run/resolve", { run: "busy", path: paths[0]!, decision: "reject" });
    await expect(one.call("proposal/create", { run: "busy", tool: "sh", command: "echo 65" })).resolves.toMatchObject({ path: expect.any(String) });
  }, 60_000);
});
