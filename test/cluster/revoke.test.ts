import { expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { connectWebSocket } from "../../src/client/ws-transport.js";
import { twoServersSharingPostgres } from "../helpers/cluster.js";
import { describeWithInfra } from "../helpers/infra.js";

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
