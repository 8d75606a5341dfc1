import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import type { SpoolNotifications } from "../../src/protocol/notifications.js";
import { ENTRY } from "../../src/protocol/status.js";
import { credentialClients } from "../helpers/credential-clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { modernRequest, openStream } from "../mcp/modern-harness.js";

/*
 * Revoking a credential withdraws its proposals that wait for a decision, in every project: nobody can accept a
 * command whose proposer no longer exists. A real server, real WebSocket clients, each principal its own credential.
 */

type Resolved = SpoolNotifications["run/resolved"];

/** Every log entry's status, by run and path. */
async function statuses(client: SpoolClient, runs: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const run of runs) for (const e of (await client.call("entry/list", { run, pattern: "log://*" })).entries) out[`${run} ${e.path}`] = e.status;
  return out;
}

describe("token/revoke withdraws the revoked principal's waiting proposals", () => {
  let ts: TestServer;
  /** The home's token file (the admin): it makes the projects, the credentials, and revokes. */
  let admin: SpoolClient;
  const { as, closeAll } = credentialClients(() => ts.server.url);
  const credential = async (name: string, role: "admin" | "person") => (await admin.call("token/create", { name, role })).token;

  beforeAll(async () => {
    ts = await startTestServer();
    admin = await ts.clientIn("alpha");
    await (await ts.clientIn("beta")).call("ping", {});
  });
  afterAll(async () => {
    closeAll();
    await ts.stop();
  });

  it("ends them rejected by the revocation in every project, tells other principals' clients, and leaves another principal's proposal to be approved", async () => {
    const token = await credential("boss2", "admin");
    const boss2 = await as(token, "alpha");
    const boss2InBeta = await as(token, "beta");
    const carol = await as(await credential("carol", "person"), "alpha");
    // Watchers of another principal, one in each project: they show the cards, so they must see them go.
    const watcherToken = await credential("watcher", "person");
    const watcher = await as(watcherToken, "alpha");
    const watcherInBeta = await as(watcherToken, "beta");
    await boss2.call("run/create", { alias: "boss-run" });
    await boss2InBeta.call("run/create", { alias: "boss-beta" });
    await carol.call("run/create", { alias: "carol-run" });
    const mine = await boss2.call("proposal/create", { run: "boss-run", tool: "sh", command: "echo from boss2" });
    const mineInBeta = await boss2InBeta.call("proposal/create", { run: "boss-beta", tool: "sh", command: "echo from boss2 in beta" });
    const carols = await carol.call("proposal/create", { run: "carol-run", tool: "sh", command: "echo from carol" });

    const told = watcher.next("run/resolved", (p: Resolved) => p.path === mine.path && p.run === "boss-run");
    const toldInBeta = watcherInBeta.next("run/resolved", (p: Resolved) => p.path === mineInBeta.path && p.run === "boss-beta");
    const heard: Resolved[] = [];
    watcher.on("run/resolved", (p: Resolved) => heard.push(p));
    const closed = new Promise<number>((resolve) => boss2.onClose((code) => resolve(code)));

    const revoked = await admin.call("token/revoke", { name: "boss2" });
    expect(await closed).toBe(1008);
    // Withdrawn by the time the revocation is answered.
    expect((await admin.call("entry/get", { run: "boss-run", path: mine.path })).status).toBe(ENTRY.rejected);
    for (const notice of [await told, await toldInBeta]) {
      expect(notice).toMatchObject({
        decision: "reject",
        status: ENTRY.rejected,
        resolver: { kind: "revoked", how: "revoked", connectionId: null },
        reason: expect.stringContaining('"boss2" was revoked'),
      });
      expect(notice.resolvedBy).toMatch(/^admin via /);
    }
    expect(await watcher.call("entry/get", { run: "boss-run", path: mine.path })).toMatchObject({
      status: ENTRY.rejected,
      attributes: { decision: "reject", reason: expect.stringContaining('"boss2" was revoked') },
    });
    expect((await watcherInBeta.call("entry/get", { run: "boss-beta", path: mineInBeta.path })).status).toBe(ENTRY.rejected);
    expect(revoked).toMatchObject({ principal: { name: "boss2" }, closed: 2, withdrawn: 2 });
    // A person can no longer accept it.
    await expect(watcher.call("run/resolve", { run: "boss-run", path: mine.path, decision: "accept" })).rejects.toMatchObject({
      data: { code: "CONFLICT" },
    });

    // carol's proposal still waits, nothing was said of it, and it can still be approved (it runs on the embedded runner).
    expect((await watcher.call("entry/get", { run: "carol-run", path: carols.path })).status).toBe(ENTRY.proposed);
    expect(heard.filter((p) => p.run === "carol-run")).toEqual([]);
    const finished = watcher.next("stream/finished", (p: { path: string; run: string }) => p.run === "carol-run" && p.path === carols.path, 20_000);
    await expect(watcher.call("run/resolve", { run: "carol-run", path: carols.path, decision: "accept" })).resolves.toMatchObject({ status: ENTRY.done });
    expect(await finished).toMatchObject({ status: ENTRY.done });

    // The trail: the revocation (how many it withdrew), and each withdrawal as a decision of the revoking principal's.
    const trail = (await admin.call("audit/list", {})).events;
    expect(trail.find((e) => e.action === "token/revoke" && e.detail.name === "boss2")?.detail).toMatchObject({ closed: 2, withdrawn: 2 });
    const withdrawals = trail.filter((e) => e.action === "decision" && e.detail.resolver === "revoked");
    expect(withdrawals.map((e) => `${e.project} ${e.run} ${e.path}`).sort()).toEqual([`alpha boss-run ${mine.path}`, `beta boss-beta ${mineInBeta.path}`]);
    for (const e of withdrawals) expect(e).toMatchObject({ principal: "admin", detail: { decision: "reject", how: "revoked" } });
  });

  it("the case found by hand: an admin credential's run_command over HTTP /mcp waits for a decision; revoked, its stream ends and the proposal is withdrawn", async () => {
    const token = await credential("boss3", "admin");
    const watcher = await as(await credential("watcher3", "person"), "alpha");
    const proposed = watcher.next("run/proposal", (p: SpoolNotifications["run/proposal"]) => p.command === "echo from boss3 over mcp", 20_000);
    const call = modernRequest("tools/call", { name: "run_command", arguments: { command: "echo from boss3 over mcp" } }, { token, client: "boss3-app" });
    const mcp = `${ts.server.url.replace(/^ws:/, "http:").replace(/\/$/, "")}/mcp?root=${encodeURIComponent(ts.root)}`;
    const stream = await openStream(mcp, { method: "POST", headers: call.headers, body: JSON.stringify(call.body) });
    const p = await proposed;
    expect(p.attributes.proposedBy).toMatch(/^boss3 via /);
    const told = watcher.next("run/resolved", (r: Resolved) => r.run === p.run && r.path === p.path);

    const revoked = await admin.call("token/revoke", { name: "boss3" });
    await stream.ended;
    // Before the fix it stayed 202: a person could still approve the command of a credential that no longer exists.
    expect((await watcher.call("entry/get", { run: p.run, path: p.path })).status).toBe(ENTRY.rejected);
    expect(await told).toMatchObject({ decision: "reject", status: ENTRY.rejected, resolver: { kind: "revoked" } });
    expect(revoked).toMatchObject({ withdrawn: 1 });
    stream.abort();
  });

  it("a revocation of a credential with nothing waiting, or of an unknown one, changes no proposal", async () => {
    const dave = await as(await credential("dave", "person"), "alpha");
    const erin = await as(await credential("erin", "person"), "alpha");
    await erin.call("run/create", { alias: "erin-run" });
    const erins = await erin.call("proposal/create", { run: "erin-run", tool: "sh", command: "echo from erin" });
    // dave proposed once and withdrew it himself: nothing of his waits.
    await dave.call("run/create", { alias: "dave-run" });
    const daves = await dave.call("proposal/create", { run: "dave-run", tool: "sh", command: "echo from dave" });
    await dave.call("run/resolve", { run: "dave-run", path: daves.path, decision: "reject", reason: "changed my mind" });
    const runs = (await admin.call("run/list", {})).runs.map((r) => r.alias);
    const before = await statuses(admin, runs);
    const heard: Resolved[] = [];
    erin.on("run/resolved", (p: Resolved) => heard.push(p));

    await expect(admin.call("token/revoke", { name: "dave" })).resolves.toMatchObject({ closed: 1, withdrawn: 0 });
    await expect(admin.call("token/revoke", { name: "nobody-has-this" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await expect(admin.call("token/revoke", { name: "dave" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    // A notice sent to erin would arrive before the answer to its next call.
    await erin.call("ping", {});
    expect(heard).toEqual([]);
    expect(await statuses(admin, runs)).toEqual(before);
    expect(before[`erin-run ${erins.path}`]).toBe(ENTRY.proposed);
    expect((await admin.call("entry/get", { run: "dave-run", path: daves.path })).attributes).toMatchObject({ reason: "changed my mind" });
  });
});
