import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithInfra, sshRunnerFlags } from "../helpers/infra.js";
import { type RunnerProcess, spawnRunner } from "../helpers/process.js";
import { ensureRun } from "../helpers/proposals.js";
import { runTool } from "../helpers/runners.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * `spool runner` started as an operator types it, in a directory of its own: `--token-file token --state-dir state`,
 * relative to where it was started. The runner keeps those files out of every sandboxed command's view by their path;
 * a relative one was checked on the SSH host against the command's workspace (`$W/token`), which refused every
 * sandboxed command there ("the command's view would hold …/token").
 */
describeWithInfra("ssh", "spool runner with relative --token-file and --state-dir (an SSH runner)", () => {
  let ts: TestServer;
  let runner: RunnerProcess;
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    const work = tempDir("spool-runner-cwd-");
    mkdirSync(work, { recursive: true, mode: 0o700 });
    copyFileSync(ts.server.config.tokenFile, join(work, "token"));
    const args = ["--server", ts.server.url, "--project", "paths", "--name", "rel", "--token-file", "token", "--state-dir", "state"];
    await ts.clientIn("paths");
    runner = await spawnRunner([...args, ...sshRunnerFlags()], {}, undefined, work);
  }, 120_000);
  afterAll(async () => {
    await runner?.stop();
    await ts?.stop();
  });

  it("runs a workspace-write command there (the paths it keeps from commands are its own, absolute)", async () => {
    const client = await ts.clientIn("paths");
    const done = await runTool(client, "rel", "sh", "echo ran", { runner: "rel" });
    expect(JSON.stringify(done.log)).not.toContain("would hold");
    expect(done.err).toBe("");
    expect(done.out).toBe("ran\n");
  }, 60_000);

  it("says in words that workspace-write commands share the SSH host's network", () => {
    const line = runner
      .output()
      .split("\n")
      .find((l) => l.includes("warn: runner rel:") && !l.includes("read-only"));
    expect(line).toMatch(/workspace-write commands share the network of the SSH host/);
  });

  it("without --root (the login directory, the login's home) it claims mode full only, saying why: a sandboxed command is refused at accept, never taken to fail at its start", async () => {
    const client = await ts.clientIn("paths");
    const home = await spawnRunner(
      [
        "--server",
        ts.server.url,
        "--project",
        "paths",
        "--name",
        "home",
        "--token-file",
        ts.server.config.tokenFile,
        "--state-dir",
        tempDir(),
        ...sshRunnerFlags().slice(2),
      ],
      {},
    );
    try {
      expect(home.output()).toMatch(/is or holds the login's home \S+: sandboxed commands are refused there .*start it with --root DIR/);
      const listed = (await client.call("runner/list", {})).runners.find((r) => r.name === "home");
      expect(listed?.sandbox.modes).toEqual(["full"]);
      await ensureRun(client, "home");
      const { path } = await client.call("proposal/create", { run: "home", tool: "sh", command: "echo ran" });
      await expect(client.call("run/resolve", { run: "home", path, decision: "accept", runner: "home" })).rejects.toMatchObject({
        data: { code: "NO_RUNNER" },
      });
    } finally {
      await home.stop();
    }
  }, 120_000);
});
