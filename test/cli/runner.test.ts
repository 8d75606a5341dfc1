import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnRunner } from "../helpers/process.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

describe("spool runner", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
  });
  afterAll(() => ts.stop());

  const base = () => ["--server", ts.server.url, "--project", "cli", "--name", "cli-box"];

  it("refuses to start with a wrong token, a missing flag or an incomplete backend, saying why", async () => {
    const bad = join(tempDir(), "token");
    writeFileSync(bad, "not-the-token\n");
    await expect(spawnRunner([...base(), "--token-file", bad, "--backend", "local"])).rejects.toThrow(
      /\(exit 3\)[\s\S]*wrong token for ws:\/\/127\.0\.0\.1:\d+\/ .*used: .*token/,
    );
    await expect(spawnRunner([...base(), "--token-file", ts.server.config.tokenFile])).rejects.toThrow(/--backend must be local, docker or ssh/);
    await expect(spawnRunner([...base(), "--token-file", ts.server.config.tokenFile, "--backend", "docker"])).rejects.toThrow(
      /needs exactly one of --image or --container/,
    );
    await expect(spawnRunner([...base(), "--token-file", ts.server.config.tokenFile, "--backend", "ssh"])).rejects.toThrow(/--ssh-host is required/);
    const client = await ts.clientIn("cli");
    expect((await client.call("runner/list", {})).runners).toEqual([]);
  });

  it("attaches, shows in runner/list, and detaches on SIGTERM", async () => {
    const runner = await spawnRunner([...base(), "--token-file", ts.server.config.tokenFile, "--backend", "local", "--label", "gpu=none", "--default"]);
    const client = await ts.clientIn("cli");
    const { runners } = await client.call("runner/list", {});
    expect(runners).toEqual([expect.objectContaining({ name: "cli-box", backend: "local", default: true, labels: { gpu: "none" } })]);
    expect(await runner.stop("SIGTERM")).toBe(0);
    expect(runner.output()).toContain("stopping the runner");
    expect((await client.call("runner/list", {})).runners).toEqual([]);
  });
});
