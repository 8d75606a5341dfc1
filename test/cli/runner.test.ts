import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processStartTicks } from "../../src/home/lock.js";
import { viewsDir } from "../../src/home/registry.js";
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
    await expect(spawnRunner([...base(), "--token-file", ts.server.config.tokenFile])).rejects.toThrow(/--backend is required \(see spool runner --help\)/);
    await expect(spawnRunner([...base(), "--token-file", ts.server.config.tokenFile, "--backend", "k8s"])).rejects.toThrow(
      /--backend must be local, docker or ssh, got "k8s"/,
    );
    await expect(spawnRunner([...base(), "--token-file", ts.server.config.tokenFile, "--backend", "docker"])).rejects.toThrow(
      /needs exactly one of --image or --container/,
    );
    await expect(spawnRunner([...base(), "--token-file", ts.server.config.tokenFile, "--backend", "ssh"])).rejects.toThrow(/--ssh-host is required/);
    const client = await ts.clientIn("cli");
    // Pool flags the server would refuse, said in the flag's words before anything attaches.
    const local = [...base(), "--token-file", ts.server.config.tokenFile, "--backend", "local"];
    await expect(spawnRunner([...local, "--capacity", "2000"])).rejects.toThrow(/--capacity must be at most 1024 \(commands at once\), got "2000"/);
    await expect(spawnRunner([...local, "--label", "a b=c"])).rejects.toThrow(/--label "a b=c": a label key is 1-128 letters/);
    await expect(spawnRunner([...local, "--label", "os=lin ux"])).rejects.toThrow(/--label "os=lin ux": a label value is up to 63 letters/);
    // A state directory in a project (src/home/in-project.ts): the project's commands could plant the records it acts on.
    const project = tempDir("spool-project-");
    mkdirSync(join(project, ".git"));
    await expect(spawnRunner([...local, "--state-dir", join(project, "state")])).rejects.toThrow(
      new RegExp(`Refusing to start: the runner's state directory ${project}/state lies in the project ${project} \\(${project}/\\.git\\)`),
    );
    expect(existsSync(join(project, "state"))).toBe(false);
    expect((await client.call("runner/list", {})).runners).toEqual([]);
  }, 180_000);

  it("refuses a --state-dir in what a sandboxed command running now sees, saying so", async () => {
    const local = [...base(), "--token-file", ts.server.config.tokenFile, "--backend", "local"];
    // One in what a sandboxed command running now sees (src/home/views.ts): this process's record stands in for it.
    const seen = tempDir("spool-seen-");
    mkdirSync(viewsDir(), { recursive: true, mode: 0o700 });
    const record = join(viewsDir(), `${process.pid}-runner-test.json`);
    writeFileSync(record, JSON.stringify({ processes: [{ pid: process.pid, since: processStartTicks(process.pid) }], roots: [seen] }));
    try {
      await expect(spawnRunner([...local, "--state-dir", join(seen, "state")])).rejects.toThrow(
        new RegExp(`Refusing to start: the runner's state directory ${seen}/state lies in ${seen}, which a sandboxed command running now sees`),
      );
    } finally {
      rmSync(record);
    }
    expect(existsSync(join(seen, "state")), "the state directory it made, removed").toBe(false);
    expect((await (await ts.clientIn("cli")).call("runner/list", {})).runners).toEqual([]);
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
