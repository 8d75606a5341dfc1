import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

// A credential gives its principal's power for that principal's lifetime: what it mints expires no later than it does,
// and goes when it is revoked (with what those minted in turn).

describe("credentials minted under another live no longer than it", () => {
  let ts: TestServer;
  let admin: SpoolClient;
  const open: SpoolClient[] = [];
  const as = async (token: string) => {
    const c = await SpoolClient.connect(ts.server.url, { token });
    open.push(c);
    await c.initialize("app");
    return c;
  };

  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    admin = await ts.clientIn("app");
  });
  afterAll(async () => {
    for (const c of open) if (!c.closed) c.close();
    await ts.stop();
  });

  it("one minted without an expiry expires with its minter; one asked to outlive it is FORBIDDEN and not made", async () => {
    const until = Date.now() + 3_600_000;
    const lead = await as((await admin.call("token/create", { name: "lead", role: "admin", projects: ["app"], expiresAt: until })).token);
    const kid = await lead.call("token/create", { name: "kid", role: "viewer", projects: ["app"] });
    expect(kid.principal.expiresAt).toBe(until);
    const later = lead.call("token/create", { name: "later", role: "viewer", projects: ["app"], expiresAt: until + 60_000 });
    await expect(later).rejects.toMatchObject({ data: { code: "FORBIDDEN", expiresAt: until } });
    await expect(later).rejects.toThrow(/may not outlive it/);
    const sooner = await lead.call("token/create", { name: "sooner", role: "viewer", projects: ["app"], expiresAt: until - 60_000 });
    expect(sooner.principal.expiresAt).toBe(until - 60_000);
    const names = (await admin.call("token/list", {})).principals.map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(["lead", "kid", "sooner"]));
    expect(names).not.toContain("later");
    // The home's credential never expires: what it mints without an expiry never does either.
    expect((await admin.call("token/create", { name: "forever", role: "viewer" })).principal.expiresAt).toBeNull();
  });

  it("a connection whose credential is no longer live (revoked, its close on its way) mints nothing: FORBIDDEN, nothing made", async () => {
    const { createMemoryTransportPair } = await import("../../src/rpc/transport.js");
    const [serverSide, clientSide] = createMemoryTransportPair();
    ts.server.rpc.accept(serverSide, { name: "ghost", role: "admin", projects: ["app"] }, "in-process");
    const ghost = new SpoolClient(clientSide);
    open.push(ghost);
    await ghost.initialize("app");
    await expect(ghost.call("token/create", { name: "orphan", role: "viewer", projects: ["app"] })).rejects.toMatchObject({
      data: { code: "FORBIDDEN", principal: "ghost" },
    });
    expect((await admin.call("token/list", {})).principals.map((p) => p.name)).not.toContain("orphan");
  });

  it("revoking a principal revokes what it minted and what those minted: their tokens stop, their connections close; others stay", async () => {
    const boss = await as((await admin.call("token/create", { name: "boss", role: "admin", projects: ["app"] })).token);
    const deputyToken = (await boss.call("token/create", { name: "deputy", role: "admin", projects: ["app"] })).token;
    const deputy = await as(deputyToken);
    const internToken = (await deputy.call("token/create", { name: "intern", role: "agent", projects: ["app"] })).token;
    const intern = await as(internToken);
    const bystander = await as((await admin.call("token/create", { name: "bystander", role: "viewer", projects: ["app"] })).token);

    const revoked = await admin.call("token/revoke", { name: "boss" });
    expect(revoked.minted).toEqual(["deputy", "intern"]);
    expect(revoked.closed).toBeGreaterThanOrEqual(3);
    await eventually(() => boss.closed && deputy.closed && intern.closed, 10_000, "the three connections closed");
    await expect(as(internToken)).rejects.toThrow();
    await expect(as(deputyToken)).rejects.toThrow();
    expect(await bystander.call("ping", {})).toBeDefined();
    const live = (await admin.call("token/list", {})).principals.map((p) => p.name);
    for (const name of ["boss", "deputy", "intern"]) expect(live).not.toContain(name);
    expect(live).toContain("bystander");
    const { events } = await admin.call("audit/list", {});
    expect(events.find((e) => e.action === "token/revoke")?.detail).toMatchObject({ name: "boss", minted: ["deputy", "intern"] });
    // A name given again later starts afresh: revoking "deputy" now revokes nothing the old one minted.
    await admin.call("token/create", { name: "deputy", role: "viewer", projects: ["app"] });
    expect((await admin.call("token/revoke", { name: "deputy" })).minted).toEqual([]);
  });
});
