import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { type CliProcess, spawnCli } from "../helpers/process.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";
import { RawClient } from "./raw-client.js";

/** What a test of `spool mcp` over stdio works with: a server, a project, and the processes and clients it starts. */
export interface StdioFixture {
  readonly ts: TestServer;
  /** The project's root (a git checkout). */
  readonly project: string;
  /** The environment `spool mcp` and the CLI run with: this server, its home and its token file. */
  env(): Record<string, string>;
  /** `spool mcp` in the project (with `args` after), driven with raw lines; ended after each test. */
  spawn(args?: string[]): RawClient;
  /** Another Spool client in the project: a person at the web view; closed after each test. */
  person(): Promise<SpoolClient>;
}

/**
 * Registers the file's hooks: one in-process server and one project for the file; each test's `spool mcp` processes
 * are ended (stdin closed) and its other clients closed after it.
 */
export function stdioFixture(prefix: string): StdioFixture {
  let ts: TestServer | undefined;
  let project = "";
  const procs: CliProcess[] = [];
  const others: SpoolClient[] = [];
  beforeAll(async () => {
    ts = await startTestServer({});
    project = join(tempDir(prefix), "proj");
    mkdirSync(join(project, ".git"), { recursive: true });
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      p.child.stdin!.end();
      await p.exitsWithin(15_000);
    }
    for (const c of others.splice(0)) c.close();
  });
  afterAll(async () => {
    await ts?.stop();
    rmSync(project, { recursive: true, force: true });
  });
  const fixture: StdioFixture = {
    get ts() {
      if (!ts) throw new Error("the server starts in beforeAll");
      return ts;
    },
    get project() {
      return project;
    },
    env: () => ({ SPOOL_HOME: fixture.ts.home, SPOOL_SERVER: fixture.ts.server.url, SPOOL_TOKEN_FILE: join(fixture.ts.home, "token") }),
    spawn(args = []) {
      const cli = spawnCli(["mcp", "--server", fixture.ts.server.url, "--project", project, ...args], fixture.env());
      procs.push(cli);
      return new RawClient(cli);
    },
    async person() {
      const c = await fixture.ts.client();
      await c.initialize(undefined, { root: project, client: { name: "web view", version: "1.0" } });
      others.push(c);
      return c;
    },
  };
  return fixture;
}
