import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { globToRegex } from "../../src/store/dialect.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { spawnCli, spawnServe } from "../helpers/process.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

describeWithInfra("postgres", "the PostgreSQL store", () => {
  let ts: TestServer;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    db = await freshDatabase();
    ts = await startTestServer({ database: db.url, localRunner: false });
  });
  afterAll(async () => {
    await ts.stop();
    await db.drop();
  });
  it("stores a proposal, its acceptance and streamed output, and reads it back by glob, tail and whole", async () => {
    const c = await ts.clientIn("p");
    await c.call("run/create", { alias: "r" });
    const { path } = await c.call("proposal/create", { run: "r", tool: "sh", sandbox: "full", command: "x", env: { A: "1" } });
    const accepted = await c.call("run/resolve", { run: "r", path, decision: "accept", runner: "self" });
    await c.call("stream", { run: "r", path, channel: 1, chunk: "a\nb\n", seq: 1 });
    await c.call("stream", { run: "r", path, channel: 1, chunk: "c\n", seq: 2 });
    await c.call("stream/completed", { run: "r", path, exit_code: 0 });
    const got = await c.call("entry/get", { run: "r", path: accepted.channels[0]!.path });
    expect(got.body).toBe("a\nb\nc\n");
    expect(got.lines).toBe(3);
    const list = await c.call("entry/list", { run: "r", pattern: "sh://*" });
    expect(list.entries.length).toBe(2);
    const tail = await c.call("entry/get", { run: "r", path: accepted.channels[0]!.path, tail: 1 });
    expect(tail.body).toBe("c\n");
  });
});

describeWithInfra("postgres", "spool serve on PostgreSQL", () => {
  it("--database or SPOOL_DATABASE_URL selects it; the banner names it without the password; a bad URL is a usage error", async () => {
    const db = await freshDatabase();
    try {
      const home = tempDir();
      const serve = await spawnServe(["--port", "0", "--home", home, "--no-local-runner", "--database", db.url]);
      try {
        expect(serve.output()).toContain(`database:   ${db.url}`);
        const client = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
        await client.initialize("pg", { root: tempDir("spool-root-") });
        await client.call("run/create", { alias: "kept" });
        client.close();
      } finally {
        expect(await serve.stop()).toBe(0);
      }
      // Another home, the same database through the environment: the run is there.
      const other = tempDir();
      const again = await spawnServe(["--port", "0", "--home", other, "--no-local-runner"], { SPOOL_DATABASE_URL: db.url });
      try {
        const client = await SpoolClient.connect(again.url, { token: readFileSync(join(other, "token"), "utf8").trim() });
        await client.initialize("pg", { create: false });
        expect((await client.call("run/list", {})).runs.map((r) => r.alias)).toEqual(["kept"]);
        client.close();
      } finally {
        await again.stop();
      }
      const bad = spawnCli(["serve", "--port", "0", "--home", tempDir(), "--database", "mysql://x"]);
      expect(await bad.exit).toBe(2);
      expect(bad.stderr()).toContain("--database must be a PostgreSQL URL");
    } finally {
      await db.drop();
    }
  }, 90_000);
});

describe("migrations", () => {
  it("SQLite's glob patterns become the same matches as PostgreSQL regular expressions", () => {
    const cases: [string, string, boolean][] = [
      ["sh://*", "sh://turn_1/make_1", true],
      ["sh://*_1", "sh://turn_1/make_2", false],
      ["log://turn_?/sh/*", "log://turn_3/sh/x", true],
      ["a.b", "axb", false],
      ["[!a]x", "bx", true],
      ["[!a]x", "ax", false],
      ["(x)+", "(x)+", true],
    ];
    for (const [glob, path, matches] of cases) expect(new RegExp(globToRegex(glob)).test(path), `${glob} ${path}`).toBe(matches);
  });
});
