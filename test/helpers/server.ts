import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import type { SpoolServer, StartOptions } from "../../src/server/server.js";
import type { SqliteStore } from "../../src/store/sqlite/database.js";
import type { freshDatabase } from "./postgres.js";

export type TransportKind = "memory" | "websocket";

/** The directories `tempDir` made in the current test file, removed when it ends (file-cleanup.ts). */
const made = new Set<string>();

/** A new directory under the system's temporary directory, removed when the test file ends (test/helpers/file-cleanup.ts). */
export function tempDir(prefix = "spool-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/**
 * Removes the directories `tempDir` made, with what a server left in them (its home's token, database and socket):
 * a test home left behind stays recorded in the registry of Spool homes every sandbox reads (home/registry.ts) and
 * costs every sandboxed start until it is removed.
 */
export function removeTempDirs(): void {
  for (const dir of made) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch (error) {
      console.warn(`could not remove the test directory ${dir}: ${String(error)}`);
    }
    made.delete(dir);
    homeRoots.delete(dir);
  }
}

export interface TestServer {
  server: SpoolServer;
  home: string;
  /** The projects' root (`clientIn`): a directory apart from the home, which a project may not be (issue 37). */
  root: string;
  /** A connected (not yet initialized) client over the given transport. */
  client(kind?: TransportKind): Promise<SpoolClient>;
  /** A client initialized into `project`. */
  clientIn(project: string, kind?: TransportKind): Promise<SpoolClient>;
  stop(): Promise<void>;
}

const homeRoots = new Map<string, string>();
const homeDatabases = new Map<string, Awaited<ReturnType<typeof freshDatabase>>>();

/**
 * Starts a server on a temporary home. With SPOOL_TEST_STORE=postgres (and the test PostgreSQL server), every
 * test server gets a fresh PostgreSQL database instead of its SQLite file: the same tests, the other store.
 */
export async function startTestServer(options: StartOptions = {}): Promise<TestServer> {
  const home = options.home ?? tempDir();
  // A home's projects keep their root as long as the home: a restart on the same home finds them where they were.
  const root = homeRoots.get(home) ?? tempDir("spool-root-");
  homeRoots.set(home, root);
  // A home's database lives as long as the home: a restart on the same home finds its state.
  let database = options.database === undefined && process.env.SPOOL_TEST_STORE === "postgres" ? (homeDatabases.get(home) ?? null) : null;
  if (!database && options.database === undefined && process.env.SPOOL_TEST_STORE === "postgres") {
    const postgres = await import("./postgres.js");
    homeDatabases.set(home, (database = await postgres.freshDatabase()));
  }
  // Loaded already under vitest (its setup file warm-server.ts, outside any hook's clock); imported here, not at the
  // top, for what imports this helper outside vitest's setup (benches, scripts) for tempDir or eventually only.
  const { startServer } = await import("../../src/server/server.js");
  const server = await startServer({ port: 0, logger: createLogger("silent"), env: {}, ...options, home, ...(database ? { database: database.url } : {}) });
  const clients: SpoolClient[] = [];
  const client = async (kind: TransportKind = "websocket") => {
    const c = kind === "memory" ? new SpoolClient(server.connectInProcess()) : await SpoolClient.connect(server.url, { token: server.token });
    clients.push(c);
    return c;
  };
  return {
    server,
    home,
    root,
    client,
    async clientIn(project, kind = "websocket") {
      const c = await client(kind);
      await c.initialize(project, { root });
      return c;
    },
    async stop() {
      for (const c of clients) if (!c.closed) c.close();
      await server.stop();
      if (!options.home) {
        rmSync(root, { recursive: true, force: true });
        homeRoots.delete(home);
        await database?.drop();
        homeDatabases.delete(home);
        rmSync(home, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Waits until `check` returns true, polling; fails after `timeoutMs`, saying what it waited for (`what`, or what it
 * returns then). The bound is a wait for an event, not a measure: it ends the moment the check holds, and is only
 * reached when the event never comes, so the default is one no busy machine outruns (30 s, half a test's 60).
 */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 30_000, what: string | (() => string) = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${typeof what === "function" ? what() : what}`);
}

/** The SQLite handle of a server's store, for tests of SQLite itself (WAL, pragmas, a full disk). */
export function sqliteOf(server: SpoolServer): SqliteStore["sqlite"] {
  if (server.store.kind !== "sqlite") throw new Error("this test checks SQLite itself; the server's store is PostgreSQL");
  return (server.store as SqliteStore).sqlite;
}
