import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import type NodeWebSocket from "ws";
import { SpoolClient } from "../../src/client/spool-client.js";
import { PROTOCOL_VERSION } from "../../src/protocol/index.js";
import { pageSocket, pair, sessionOf } from "../helpers/devices.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/** One JSON-RPC call over a page's socket, as the page makes it. */
function call(ws: NodeWebSocket, id: number, method: string, params: object): Promise<{ result?: unknown; error?: { data?: { code?: string } } }> {
  return new Promise((resolve) => {
    const listener = (data: Buffer, binary: boolean) => {
      if (binary) return;
      const message = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { data?: { code?: string } } };
      if (message.id !== id) return;
      ws.off("message", listener);
      resolve(message);
    };
    ws.on("message", listener);
    ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
  });
}

/** Issue 53: two servers on one PostgreSQL database: a device paired on one decides on the other, and its revocation reaches both. */
describeWithInfra("postgres", "paired devices across servers sharing PostgreSQL", () => {
  const servers: TestServer[] = [];
  const clients: SpoolClient[] = [];
  let drop: (() => Promise<void>) | null = null;
  afterAll(async () => {
    for (const c of clients) if (!c.closed) c.close();
    for (const s of servers) await s.stop();
    await drop?.();
  });

  it("a device paired on A decides a proposal through B; unpaired on A, its page on B closes within 2 s", async () => {
    const db = await freshDatabase();
    drop = db.drop;
    const root = tempDir("spool-devices-root-");
    const tokenFile = join(tempDir("spool-devices-token-"), "token");
    writeFileSync(tokenFile, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
    for (let i = 0; i < 2; i++) servers.push(await startTestServer({ database: db.url, env: { SPOOL_TOKEN_FILE: tokenFile } }));
    const [a, b] = servers as [TestServer, TestServer];
    const admin = await SpoolClient.connect(a.server.url, { token: a.server.token });
    clients.push(admin);
    await admin.initialize("team", { root });
    const { token } = await admin.call("token/create", { name: "pat", role: "person" });
    const { run } = await admin.call("run/create", { alias: "by-hand" });
    const { path } = await admin.call("proposal/create", { run: run.alias, tool: "sh", command: "echo from the phone" });

    const phone = await pair(a.server.port, token, { name: "pat-phone" });
    const onB = `http://127.0.0.1:${b.server.port}`;
    expect((await sessionOf(phone, onB)).status).toBe(200);
    const { ws, closed } = await pageSocket(phone, onB);
    expect(
      (await call(ws, 1, "initialize", { project: "team", protocolVersion: PROTOCOL_VERSION, client: { name: "spool-web", version: "1" } })).error,
    ).toBeUndefined();
    const decided = await call(ws, 2, "run/resolve", { run: run.alias, path, decision: "reject", reason: "not today" });
    expect(decided.error).toBeUndefined();
    expect(decided.result).toMatchObject({ path, status: 403 });
    const entry = await admin.call("entry/get", { run: run.alias, path });
    expect(entry.status).toBe(403);
    expect(JSON.stringify(entry.attributes)).toMatch(/"pat via spool-web"/);

    const started = Date.now();
    await admin.call("device/revoke", { device: "pat-phone" });
    expect(await closed).toEqual({ code: 1008, reason: "signed out: device unpaired" });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((await sessionOf(phone, onB)).status).toBe(401);
  }, 60_000);
});
