import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freshDatabase } from "./postgres.js";
import { startTestServer, type TestServer, tempDir } from "./server.js";

/**
 * Two in-process servers on one fresh PostgreSQL database, sharing one token file as a team's servers do. Call it in a
 * describe: `start()` starts them and gives the admin's client on the first, the project "team" initialized; after
 * the tests the clients (the admin's and those given to `keep`) close, the servers stop and the database is dropped.
 */
export function twoServersSharingPostgres(prefix: string) {
  const servers: TestServer[] = [];
  const clients: SpoolClient[] = [];
  let drop: (() => Promise<void>) | null = null;
  afterAll(async () => {
    for (const c of clients) if (!c.closed) c.close();
    for (const s of servers) await s.stop();
    await drop?.();
  });
  return {
    /** `client`, closed after the tests. */
    keep(client: SpoolClient): SpoolClient {
      clients.push(client);
      return client;
    },
    /** Starts both servers (`plugins`: plugin files both load). */
    async start(plugins: string[] = []): Promise<{ a: TestServer; b: TestServer; admin: SpoolClient; root: string }> {
      const db = await freshDatabase();
      drop = db.drop;
      const root = tempDir(`${prefix}-root-`);
      const tokenFile = join(tempDir(`${prefix}-token-`), "token");
      writeFileSync(tokenFile, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
      for (let i = 0; i < 2; i++) servers.push(await startTestServer({ database: db.url, env: { SPOOL_TOKEN_FILE: tokenFile }, plugins }));
      const [a, b] = servers as [TestServer, TestServer];
      const admin = await SpoolClient.connect(a.server.url, { token: a.server.token });
      clients.push(admin);
      await admin.initialize("team", { root });
      return { a, b, admin, root };
    },
  };
}
