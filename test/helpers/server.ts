import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import { type SpoolServer, type StartOptions, startServer } from "../../src/server.js";

export type TransportKind = "memory" | "websocket";

export function tempDir(prefix = "spool-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestServer {
  server: SpoolServer;
  home: string;
  /** A connected (not yet initialized) client over the given transport. */
  client(kind?: TransportKind): Promise<SpoolClient>;
  /** A client initialized into `project`. */
  clientIn(project: string, kind?: TransportKind): Promise<SpoolClient>;
  stop(): Promise<void>;
}

export async function startTestServer(options: StartOptions = {}): Promise<TestServer> {
  const home = options.home ?? tempDir();
  const server = await startServer({ port: 0, logger: createLogger("silent"), env: {}, ...options, home });
  const clients: SpoolClient[] = [];
  const client = async (kind: TransportKind = "websocket") => {
    const c = kind === "memory" ? new SpoolClient(server.connectInProcess()) : await SpoolClient.connect(server.url, { token: server.token });
    clients.push(c);
    return c;
  };
  return {
    server,
    home,
    client,
    async clientIn(project, kind = "websocket") {
      const c = await client(kind);
      await c.initialize(project, { root: home });
      return c;
    },
    async stop() {
      for (const c of clients) if (!c.closed) c.close();
      await server.stop();
      if (!options.home) rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Waits until `check` returns true, polling; fails after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
