import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { connectWebSocket } from "../../src/client/ws-transport.js";
import { ENTRY } from "../../src/protocol/status.js";
import { holdProposals } from "../fixtures/plugins/hold-proposals.js";
import { twoServersSharingPostgres } from "../helpers/cluster.js";
import { describeWithInfra } from "../helpers/infra.js";
import type { TestServer } from "../helpers/server.js";

/** Two servers on one PostgreSQL database: a principal made and revoked on one is known, then cut off, on the other. */
describeWithInfra("postgres", "principals across servers sharing PostgreSQL", () => {
  const cluster = twoServersSharingPostgres("spool-revoke");

  it("a principal revoked on one server loses its open connection on the other", async () => {
    const { b, admin, root } = await cluster.start();
    const { token } = await admin.call("token/create", { name: "roamer", role: "viewer" });

    const onB = cluster.keep(await SpoolClient.connect(b.server.url, { token }));
    await expect(onB.initialize("team", { root })).resolves.toMatchObject({ principal: { name: "roamer", role: "viewer" } });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => onB.onClose((code, reason) => resolve({ code, reason })));
    await expect(admin.call("token/revoke", { name: "roamer" })).resolves.toMatchObject({ closed: 0 });
    expect(await closed).toEqual({ code: 1008, reason: "credential revoked" });
    await expect(connectWebSocket(b.server.url, { token })).rejects.toMatchObject({ status: 401 });
  }, 60_000);
});

/** A revocation withdraws the principal's waiting proposals once, on the server that took it; every server's clients hear it. */
/** A person credential made by `admin`, connected to server `b` and joined to "team". */
async function personOn(cluster: ReturnType<typeof twoServersSharingPostgres>, started: { b: TestServer; admin: SpoolClient; root: string }, name: string) {
  const { token } = await started.admin.call("token/create", { name, role: "person" });
  const client = cluster.keep(await SpoolClient.connect(started.b.server.url, { token }));
  await client.initialize("team", { root: started.root });
  return client;
}

describeWithInfra("postgres", "a revoked principal's proposals across servers sharing PostgreSQL", () => {
  const cluster = twoServersSharingPostgres("spool-revoke-withdraw");

  it("a principal revoked on one server has its proposal made on the other withdrawn, and that server's clients are told", async () => {
    const started = await cluster.start();
    const { admin } = started;
    const proposer = await personOn(cluster, started, "proposer");
    const watcher = await personOn(cluster, started, "watcher");
    await proposer.call("run/create", { alias: "on-b" });
    const { path } = await proposer.call("proposal/create", { run: "on-b", tool: "sh", command: "echo proposed on b" });
    const told = watcher.next("run/resolved", (p: { run: string; path: string }) => p.run === "on-b" && p.path === path, 20_000);

    await expect(admin.call("token/revoke", { name: "proposer" })).resolves.toMatchObject({ withdrawn: 1 });
    expect(await told).toMatchObject({ decision: "reject", status: ENTRY.rejected, resolver: { kind: "revoked" } });
    expect((await watcher.call("entry/get", { run: "on-b", path })).status).toBe(ENTRY.rejected);
  }, 60_000);
});

describeWithInfra("postgres", "a proposal under way on one server while its credential is revoked on another", () => {
  const cluster = twoServersSharingPostgres("spool-revoke-late");

  it("is withdrawn on the server that stored it, after the revoking server read the waiting ones", async () => {
    const started = await cluster.start([fileURLToPath(new URL("../fixtures/plugins/hold-proposals.ts", import.meta.url))]);
    const { admin } = started;
    const late = await personOn(cluster, started, "late");
    const watcher = await personOn(cluster, started, "late-watcher");
    await late.call("run/create", { alias: "late-on-b" });
    const hold = holdProposals();
    const told = watcher.next("run/resolved", (p: { run: string }) => p.run === "late-on-b", 20_000);
    void late.call("proposal/create", { run: "late-on-b", tool: "sh", command: "echo HOLD on b" }).catch(() => undefined);
    await hold.entered;
    await expect(admin.call("token/revoke", { name: "late" })).resolves.toMatchObject({ withdrawn: 0 });
    hold.release();
    const notice = await told;
    expect(notice).toMatchObject({ decision: "reject", status: ENTRY.rejected, resolver: { kind: "revoked" }, resolvedBy: "revocation" });
    expect((await watcher.call("entry/get", { run: "late-on-b", path: notice.path })).status).toBe(ENTRY.rejected);
  }, 60_000);
});
