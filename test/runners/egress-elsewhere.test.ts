// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { mkdtempSync, rmSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import type { Backend, ExecSpec } from "../../src/runners/backend.js";
import { SshBackend } from "../../src/runners/ssh/ssh.js";
import { describeWithInfra, infra, sshHostKeys, sshKey } from "../helpers/infra.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Network mode allowlist where it cannot be enforced (SPEC §7, "Network mode allowlist", other runners): a runner
 * whose sandbox does not say `egress` is refused with UNSUPPORTED at proposal and at accept, and the SSH backend (and
 * the Docker one for an exec in a running container: egress-docker.test.ts) refuses such a command again before
 * anything starts. Never run unrestricted.
 */

const spec = (workspace: string): ExecSpec => ({
  command: "echo ran",
  cwd: workspace,
  workspace,
  env: {},
  sandbox: { mode: "workspace-write", egress: { allow: ["registry.test"] } },
  timeoutMs: 10_000,
  signal: new AbortController().signal,
});

describeWithInfra("local", "a runner that does not enforce an allowlist", () => {
  let ts: TestServer;
  let client: SpoolClient;
  let runner: SpoolClient;
  beforeAll(async () => {
    ts = await startTestServer();
    client = await ts.clientIn("elsewhere");
    await client.call("run/create", { alias: "r" });
    // A runner claiming a bubblewrap sandbox with every mode, but not egress (Docker, SSH, one from before the allowlist).
    runner = await ts.clientIn("elsewhere");
    await runner.call("runner/attach", {
      name: "remote",
      backend: "ssh",
      sandbox: { kind: "bwrap", readOnly: true, detail: "bubblewrap over SSH", modes: ["read-only", "workspace-write", "full"], network: "shared" },
    });
  });
  afterAll(async () => {
    await ts?.stop();
  });

  it("a proposal with hosts for it is UNSUPPORTED and nothing is stored", async () => {
    const before = (await client.call("entry/list", { run: "r" })).entries.length;
    const error: any = await client
      .call("proposal/create", { run: "r", tool: "sh", command: "echo x", runner: "remote", allow_hosts: ["registry.test"] })
      .catch((e) => e);
    expect(error.data?.code).toBe("UNSUPPORTED");
    expect(error.message).toContain('Runner "remote" cannot enforce a network allowlist');
    expect((await client.call("entry/list", { run: "r" })).entries.length).toBe(before);
  });

  it("an accept on it of a proposal with an allowlist is UNSUPPORTED, and the proposal still waits", async () => {
    const { path } = await client.call("proposal/create", { run: "r", tool: "sh", command: "echo y", allow_hosts: ["registry.test"] });
    const error: any = await client.call("run/resolve", { run: "r", path, decision: "accept", runner: "remote" }).catch((e) => e);
    expect(error.data?.code).toBe("UNSUPPORTED");
    expect((await client.call("entry/get", { run: "r", path })).status).toBe(202);
  });
});

/** The backend's start refuses it, naming the backend; nothing runs. */
async function refuses(backend: Backend, workspace: string, name: string) {
  await expect(backend.start(spec(workspace))).rejects.toThrow(`network mode allowlist is not available on the ${name} runner`);
}

describeWithInfra("ssh", "the SSH backend refuses a command with an allowlist", () => {
  let backend: SshBackend;
  let workspace: string;
  beforeAll(() => {
    backend = new SshBackend({ host: infra.ssh!.host, port: infra.ssh!.port, username: infra.ssh!.username, privateKey: sshKey(), hostKeys: sshHostKeys() });
    workspace = mkdtempSync("/var/tmp/spool-ssh-egress-");
  });
  afterAll(async () => {
    await backend.close();
    rmSync(workspace, { recursive: true, force: true });
  });
  it("before anything starts on the host", () => refuses(backend, workspace, "ssh"));
});
