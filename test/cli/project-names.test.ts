import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { runCli, type ServeProcess, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";
import { modern } from "../mcp/modern-harness.js";

/**
 * A project is made only with a root its caller names: a mistyped name is NOT_FOUND on every door (the CLI's exit 4,
 * a JSON-RPC error on /mcp), naming the projects there are — never a project at the directory the
 * server was started in. And one is removed with `spool projects rm`, after a confirmation, audited.
 */
describe("names that must exist", () => {
  let serve: ServeProcess;
  let admin: SpoolClient;
  let home: string;
  let app: string;
  /** Where `spool serve` was started: no project may ever be rooted here. */
  let serverCwd: string;
  let token: string;
  const env = () => ({ SPOOL_HOME: home, SPOOL_SERVER: serve.url });
  const names = async () => (await admin.call("project/list", {})).projects.map((p) => p.name);

  beforeAll(async () => {
    const base = tempDir("spool-names-");
    home = join(base, "home");
    app = join(base, "app");
    serverCwd = join(base, "started-here");
    mkdirSync(app);
    mkdirSync(serverCwd);
    execFileSync("git", ["init", "-q", app]);
    serve = await spawnServe(["--port", "0", "--home", home], {}, undefined, serverCwd);
    token = readFileSync(join(home, "token"), "utf8").trim();
    admin = await SpoolClient.connect(serve.url, { token });
    await admin.call("project/create", { name: "app", root: app });
  }, 60_000);
  afterAll(async () => {
    admin?.close();
    await serve?.stop();
  });

  it("initialize with a name alone that no project has is NOT_FOUND naming the projects there are, and makes none", async () => {
    const client = await SpoolClient.connect(serve.url, { token });
    try {
      await expect(client.initialize("ap")).rejects.toMatchObject({
        data: { code: "NOT_FOUND", project: "ap", projects: ["app"], suggestion: "app" },
        message: expect.stringContaining('did you mean "app"?'),
      });
      // Even asking to create: a name alone has no root to give it.
      await expect(client.initialize("typo-rpc", { create: true })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    } finally {
      client.close();
    }
    expect(await names()).toEqual(["app"]);
  });

  it("spool act --project with a typo exits 4 with a did-you-mean, runs nothing and makes no project", async () => {
    const act = await runCli(["act", "--project", "apq", "--yes", "touch made-by-typo"], env(), app, 30_000);
    expect(act.code, act.err).toBe(4);
    expect(act.err).toContain('--project apq: the server has no project "apq" — did you mean "app"? (it has: app)');
    expect(await names()).toEqual(["app"]);
  });

  it("spool runs --project never-existed exits 4 (a name taken anywhere: one rule); a directory that ran nothing yet is no error", async () => {
    const runs = await runCli(["runs", "--project", "never-existed"], env(), app, 30_000);
    expect(runs.code, runs.out).toBe(4);
    expect(runs.err).toContain('no project "never-existed"');
    const fromEnv = await runCli(["entries", "x"], { ...env(), SPOOL_PROJECT: "never-existed" }, app, 30_000);
    expect(fromEnv.code).toBe(4);
    expect(fromEnv.err).toContain('$SPOOL_PROJECT never-existed: the server has no project "never-existed"');
    const fresh = tempDir("spool-fresh-");
    execFileSync("git", ["init", "-q", fresh]);
    expect((await runCli(["runs"], env(), fresh, 30_000)).code).toBe(0);
  });

  it("/mcp?project=TYPO answers a JSON-RPC error naming the projects, and runs nothing (2026-07-28)", async () => {
    const base = serve.url.replace(/^ws/, "http");
    const modernAnswer = await modern(`${base}mcp?project=typo-three`, "tools/call", { name: "run_command", arguments: { command: "pwd" } }, { token });
    expect(modernAnswer.body.error?.message ?? "", JSON.stringify(modernAnswer.body)).toContain(
      'Project "typo-three" does not exist; the projects there are: app',
    );
    expect(await names()).toEqual(["app"]);
  }, 60_000);

  it("spool projects add DIR makes one there; rm asks, refuses an open run, removes with --yes, audited; an unknown name exits 4", async () => {
    const dir = tempDir("spool-gone-");
    const added = await runCli(["projects", "add", dir, "--name", "gone"], env(), app, 30_000);
    expect(added.code, added.err).toBe(0);
    expect(added.out).toContain(`made project gone rooted at ${dir}`);
    const member = await SpoolClient.connect(serve.url, { token });
    await member.initialize("gone");
    await member.call("run/create", { alias: "idle" });
    await member.call("proposal/create", { run: "idle", tool: "sh", command: "true" });
    // Not at a terminal and not --yes: nothing is removed unasked.
    const unasked = await runCli(["projects", "rm", "gone"], env(), app, 30_000);
    expect(unasked.code).toBe(2);
    expect(unasked.err).toContain("asks before it removes project gone");
    const busy = await runCli(["projects", "rm", "gone", "--yes"], env(), app, 30_000);
    expect(busy.code).toBe(1);
    expect(busy.err).toContain("commands wait or run; abort them first");
    await member.call("run/abort", { run: "idle" });
    const closed = new Promise<void>((resolve) => member.onClose(() => resolve()));
    const removed = await runCli(["projects", "rm", "gone", "--yes"], env(), app, 30_000);
    expect(removed.code, removed.err).toBe(0);
    expect(removed.out).toContain("removed project gone with 1 run; closed 1 connection to it");
    await closed;
    expect(await names()).toEqual(["app"]);
    const audit = (await admin.call("audit/list", { project: "gone" })).events.filter((e) => e.action === "project/delete");
    expect(audit.at(-1)).toMatchObject({ project: "gone", detail: { name: "gone", root: dir, runs: 1 } });
    const unknown = await runCli(["projects", "rm", "appp", "--yes"], env(), app, 30_000);
    expect(unknown.code).toBe(4);
    expect(unknown.err).toContain('the server has no project "appp" — did you mean "app"?');
  }, 60_000);

  it("project/delete with another count than the project holds is CONFLICT, and bad input changes nothing", async () => {
    await expect(admin.call("project/delete", { project: "app", runs: 7 })).rejects.toMatchObject({ data: { code: "CONFLICT", runs: 0 } });
    await expect(admin.call("project/delete", { project: "app" } as never)).rejects.toMatchObject({ code: -32602 });
    await expect(admin.call("project/delete", { project: "no-such", runs: 0 })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await expect(admin.call("project/create", { root: "relative/dir" })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    await expect(admin.call("project/create", { name: "app2", root: app })).rejects.toMatchObject({ data: { code: "CONFLICT", project: "app" } });
    expect(await names()).toEqual(["app"]);
  });
});
