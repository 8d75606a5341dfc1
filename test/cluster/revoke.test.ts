import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { connectWebSocket } from "../../src/client/ws-transport.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/** Two servers on one PostgreSQL database: a principal made and revoked on one is known, then cut off, on the other. */
describeWithInfra("postgres", "principals across servers sharing PostgreSQL", () => {
  const servers: TestServer[] = [];
  const clients: SpoolClient[] = [];
  let drop: (() => Promise<void>) | null = null;
  afterAll(async () => {
    for (const c of clients) if (!c.closed) c.close();
    for (const s of servers) await s.stop();
    await drop?.();
  });

  it("a principal revoked on one server loses its open connection on the other", async () => {
    const db = await freshDatabase();
    drop = db.drop;
    const root = tempDir("spool-revoke-root-");
    const tokenFile = join(tempDir("spool-revoke-token-"), "token");
    writeFileSync(tokenFile, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
    for (let i = 0; i < 2; i++) servers.push(await startTestServer({ database: db.url, env: { SPOOL_TOKEN_FILE: tokenFile } }));
    const [a, b] = servers as [TestServer, TestServer];
    const admin = await SpoolClient.connect(a.server.url, { token: a.server.token });
    clients.push(admin);
    await admin.initialize("team", { root });
    const { token } = await admin.call("token/create", { name: "roamer", role: "viewer" });

    const onB = await SpoolClient.connect(b.server.url, { token });
    clients.push(onB);
    await expect(onB.initialize("team", { root })).resolves.toMatchObject({ principal: { name: "roamer", role: "viewer" } });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => onB.onClose((code, reason) => resolve({ code, reason })));
    await expect(admin.call("token/revoke", { name: "roamer" })).resolves.toMatchObject({ closed: 0 });
    expect(await closed).toEqual({ code: 1008, reason: "credential revoked" });
    await expect(connectWebSocket(b.server.url, { token })).rejects.toMatchObject({ status: 401 });
  }, 60_000);
});
