import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCliInProcess } from "../helpers/cli-in-process.js";
import { spawnRunner } from "../helpers/process.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

describe("spool token", () => {
  let ts: TestServer;
  let env: NodeJS.ProcessEnv;
  const cwd = tempDir("spool-token-cwd-");

  /** A command run in this process (helpers/cli-in-process.ts); `spool runner` below is a process of its own. */
  const spool = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCliInProcess(args, { ...env, ...extra }, cwd, 20_000);

  beforeAll(async () => {
    ts = await startTestServer();
    env = { SPOOL_HOME: ts.home, SPOOL_SERVER: ts.server.url, SPOOL_TOKEN_FILE: join(ts.home, "token") };
    await ts.clientIn("alpha");
  });
  afterAll(() => ts.stop());

  it("create prints the token as its only line on stdout; list shows the principal, never the token; revoke ends it", async () => {
    const created = await spool(["token", "create", "ci-runner", "--role", "runner", "--project", "alpha", "--expires", "1h"]);
    expect(created.code).toBe(0);
    expect(created.out).toMatch(/^spool_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/);
    expect(created.err).toContain("ci-runner (runner, projects alpha, until");
    const token = created.out.trim();

    const listed = await spool(["token", "list", "--json"]);
    expect(listed.code).toBe(0);
    expect(listed.out).not.toContain(token.slice(6));
    const [principal] = JSON.parse(listed.out) as { name: string; role: string; projects: string[]; createdBy: string; expiresAt: number }[];
    expect(principal).toMatchObject({ name: "ci-runner", role: "runner", projects: ["alpha"], createdBy: "admin" });
    expect(principal!.expiresAt).toBeGreaterThan(Date.now() + 50 * 60_000);
    expect((await spool(["token", "list"])).out).toMatch(/ci-runner\s+runner\s+alpha/);

    // The runner credential runs a real `spool runner`, and a viewer's command with it is refused, naming the role.
    const file = join(tempDir("spool-token-file-"), "runner.token");
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    const runner = await spawnRunner(["--project", "alpha", "--name", "ci", "--backend", "local", "--token-file", file], env);
    const refused = await spool(["runs", "--project", "alpha", "--token-file", file]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("needs the viewer role");

    const revoked = await spool(["token", "revoke", "ci-runner"]);
    expect(revoked.code).toBe(0);
    expect(revoked.out).toMatch(/^revoked ci-runner \(closed 1 connection\)\n$/);
    await runner.stop();
    expect((await spool(["runs", "--project", "alpha", "--token-file", file])).code).toBe(3);
  }, 60_000);

  it("spool show names the principal that rejected a command", async () => {
    const admin = await ts.clientIn("alpha");
    const { token } = await admin.call("token/create", { name: "alice", role: "person" });
    const file = join(tempDir("spool-token-alice-"), "alice.token");
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    await admin.call("run/create", { alias: "shown" });
    await admin.call("proposal/create", { run: "shown", tool: "sh", command: "echo no" });
    const rejected = await spool(["reject", "shown", "--project", "alpha", "--token-file", file, "--reason", "not now"]);
    expect(rejected.code).toBe(0);
    const shown = await spool(["show", "shown", "--project", "alpha"]);
    expect(shown.out).toContain("rejected by alice via spool-cli");
  }, 60_000);

  it("refuses bad input with a usage error and creates nothing", async () => {
    for (const args of [
      ["token", "create", "x", "--role", "root"],
      ["token", "create", "x"],
      ["token", "create", "x", "--role", "viewer", "--expires", "soon"],
      ["token", "create", "--role", "viewer"],
      ["token", "frobnicate"],
    ]) {
      const result = await spool(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.out).toBe("");
    }
    expect(JSON.parse((await spool(["token", "list", "--json"])).out).map((p: { name: string }) => p.name)).not.toContain("x");
  }, 60_000);
});
