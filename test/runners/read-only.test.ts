// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, realpathSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY, RUN } from "../../src/protocol/status.js";
import { StartError } from "../../src/runners/backend.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { SshBackend } from "../../src/runners/ssh/ssh.js";
import { describeWithInfra, infra, sshHostKeys, sshKey, sshRunnerFlags } from "../helpers/infra.js";
import { type RunnerProcess, spawnRunner } from "../helpers/process.js";
import { finished, runTool } from "../helpers/runners.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { ScriptedModel, toolResult } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * Read-only work (the env tool, ask runs) runs where writes fail, or not at
 * all: on the local runner inside bubblewrap, on Docker in a read-only
 * container, over SSH inside the remote host's bubblewrap. A runner without
 * a sandbox says so and is refused such work. Every test checks the file
 * system afterwards.
 */

/** Expects the proposal to be refused at accept (NO_RUNNER, nothing started) and to stay pending. */
async function expectRefused(client: SpoolClient, run: string, command: string, runner?: string) {
  await client.call("run/create", { alias: run }).catch(() => undefined);
  const { path } = await client.call("proposal/create", { run, tool: "env", command });
  const error = await client.call("run/resolve", { run, path, decision: "accept", ...(runner ? { runner } : {}) }).catch((e: any) => e);
  expect(error.data).toMatchObject({ code: "NO_RUNNER", readOnly: true, sandbox: { readOnly: false } });
  expect(error.message).toMatch(/no read-only sandbox/);
  const log = await client.call("entry/get", { run, path });
  expect(log.status).toBe(ENTRY.proposed);
  expect(await client.call("entry/list", { run, pattern: "env://*" })).toEqual({ entries: [] });
  return path;
}

describeWithBwrap("read-only on the embedded local runner (bubblewrap)", () => {
  let ts: TestServer;
  let root: string;
  beforeAll(async () => {
    ts = await startTestServer();
    root = realpathSync(ts.root);
  });
  afterAll(() => ts.stop());

  it("runner/list shows the embedded runner's sandbox before and after it starts", async () => {
    const client = await ts.clientIn("ro-embedded");
    const before = (await client.request("runner/list", {})).runners;
    expect(before).toEqual([expect.objectContaining({ name: "local", embedded: true, sandbox: expect.objectContaining({ kind: "bwrap", readOnly: true }) })]);
    await runTool(client, "warm", "sh", "true");
    const after = (await client.request("runner/list", {})).runners;
    expect(after).toEqual([expect.objectContaining({ name: "local", attachedAt: expect.any(Number), sandbox: before[0].sandbox })]);
    expect(after[0].attachedAt).toBeGreaterThan(0);
  });

  it("touch in an env command fails and leaves no file; the same touch with sh works", async () => {
    const client = await ts.clientIn("ro-embedded");
    const scratch = tempDir("spool-ro-");
    const outside = join(scratch, "outside");
    const command = `touch ro-probe; echo "root=$?"; touch ${outside}; echo "tmp=$?"; touch /dev/shm/x 2>/dev/null; echo "shm=$?"; echo ok > /dev/null; echo "null=$?"; ls -A /var/run | wc -l; [ -e /var/run/docker.sock ]; echo "sock=$?"`;
    const env = await runTool(client, "r1", "env", command);
    expect(env.out).toBe("root=1\ntmp=1\nshm=1\nnull=0\n0\nsock=1\n");
    expect(env.err).toMatch(/touch: cannot touch 'ro-probe': Read-only file system/);
    expect(env.stdout.status).toBe(ENTRY.done);
    expect(env.log.attributes).toMatchObject({ readOnly: true, runner: "local", tool: "env" });
    expect(existsSync(join(root, "ro-probe"))).toBe(false);
    expect(existsSync(outside)).toBe(false);

    const failing = await runTool(client, "r1", "env", "touch ro-probe-2");
    expect(failing.stdout.status).toBe(ENTRY.failed);
    expect(failing.stdout.attributes).toMatchObject({ exit_code: 1 });
    expect(existsSync(join(root, "ro-probe-2"))).toBe(false);

    const sh = await runTool(client, "r1", "sh", "touch ro-probe && echo made");
    expect(sh.out).toBe("made\n");
    expect(existsSync(join(root, "ro-probe"))).toBe(true);
    rmSync(join(root, "ro-probe"));
    rmSync(scratch, { recursive: true });
  });

  it("an env command cannot reach the Spool server over the network, nor see or signal the server's process", async () => {
    const client = await ts.clientIn("ro-embedded");
    const connect = `require("net").connect(${ts.server.port}, "127.0.0.1").on("connect", () => { console.log("connected"); process.exit(0) }).on("error", (e) => { console.log(e.code); process.exit(0) })`;
    const env = await runTool(client, "r2", "env", `${process.execPath} -e '${connect}'; kill -0 ${process.pid} 2>/dev/null; echo "kill=$?"`);
    expect(env.out).toBe("ECONNREFUSED\nkill=1\n");
    // workspace-write keeps the network, in a namespace of its own where slirp4netns is there (the server's port out of reach).
    const own = (await client.call("runner/list", {})).runners.find((r) => r.name === "local")?.sandbox?.detail?.includes("a network namespace of their own");
    const sh = await runTool(client, "r2", "sh", `${process.execPath} -e '${connect}'`);
    expect(sh.out).toBe(own ? "ECONNREFUSED\n" : "connected\n");
  });

  it("a read-only command is cancelled like any other: the sandbox and what runs in it are gone", async () => {
    const client = await ts.clientIn("ro-embedded");
    await client.call("run/create", { alias: "r3" });
    const { path } = await client.call("proposal/create", { run: "r3", tool: "env", command: "sleep 300 & sleep 301; echo never" });
    const resolved = await client.request("run/resolve", { run: "r3", path, decision: "accept" });
    let pid = 0;
    await eventually(async () => {
      pid = (await client.request("entry/get", { run: "r3", path })).attributes.process?.pid ?? 0;
      return pid > 0;
    });
    await client.request("stream/cancel", { run: "r3", path, reason: "enough" });
    const done = await finished(client, "r3", { path, stdout: resolved.channels[0].path, stderr: resolved.channels[1].path });
    expect(done.stdout.status).toBe(ENTRY.cancelled);
    // Nothing of the group is left: bwrap, its init and both sleeps.
    await eventually(() => spawnSync("pgrep", ["-g", String(pid)]).status === 1, 10_000, "the sandbox's process group to be gone");
  });
});

describeWithBwrap("ask runs are read-only (embedded local runner)", () => {
  let ts: TestServer;
  let model: ScriptedModel;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({
      env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" },
      agent: { toolYieldMs: 60_000 },
    });
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });

  it("the command an ask-mode model proposes runs read-only: its touch fails, no file, and the model is told why", async () => {
    const client = await ts.clientIn("ro-ask");
    model.reply(
      { tools: [{ id: "call_touch", name: "env", arguments: { command: "touch asked-to-write" } }] },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "could not write" } }] },
    );
    const proposal = client.next("run/proposal", (p) => p.run === "ask1", 15_000);
    await client.call("run/create", { alias: "ask1", model: "test", prompt: "write a file", mode: "ask" });
    const notice = await proposal;
    expect(notice.attributes).toMatchObject({ tool: "env", readOnly: true });
    await client.call("run/resolve", { run: "ask1", path: notice.path, decision: "accept" });
    await eventually(async () => (await client.call("run/get", { run: "ask1" })).run.status === RUN.done, 20_000, "the ask run to finish");
    expect(toolResult(model.requests[1]!, "call_touch")).toMatch(/exit code: 1[\s\S]*Read-only file system/);
    expect(existsSync(join(realpathSync(ts.root), "asked-to-write"))).toBe(false);
  });
});

describe("a local runner without a sandbox says so, and read-only work is refused on it", () => {
  let ts: TestServer;
  let bare: RunnerProcess;
  let off: RunnerProcess;
  let root: string;
  /** A machine without bubblewrap: nothing named bwrap on the runner's PATH. */
  const emptyPath = tempDir("spool-empty-path-");
  const flags = (name: string) => ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "ro-none", "--name", name];
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    (await ts.clientIn("ro-none")).close();
    root = realpathSync(ts.root);
    bare = await spawnRunner([...flags("no-bwrap"), "--backend", "local", "--root", root], { PATH: emptyPath });
    off = await spawnRunner([...flags("off-box"), "--backend", "local", "--root", root, "--sandbox", "off"]);
  }, 60_000);
  afterAll(async () => {
    await bare?.stop();
    await off?.stop();
    await ts?.stop();
    rmSync(emptyPath, { recursive: true, force: true });
  });

  it("the runner prints why at attach and runner/list shows it", async () => {
    expect(bare.output()).toMatch(/No read-only sandbox: bubblewrap \(bwrap\) is not installed.*refused on this runner/);
    expect(off.output()).toMatch(/No read-only sandbox: the runner was started with --sandbox off/);
    const client = await ts.clientIn("ro-none");
    const { runners } = await client.request("runner/list", {});
    expect(runners.map((r: any) => [r.name, r.sandbox.kind, r.sandbox.readOnly])).toEqual([
      ["no-bwrap", "none", false],
      ["off-box", "none", false],
    ]);
    expect(runners[0].sandbox.detail).toMatch(/not installed/);
  });

  it("accepting an env command on it is NO_RUNNER with the reason; nothing runs, no file, the proposal stays pending", async () => {
    const client = await ts.clientIn("ro-none");
    for (const runner of ["no-bwrap", "off-box"]) await expectRefused(client, `n-${runner}`, "touch refused-probe", runner);
    expect(existsSync(join(root, "refused-probe"))).toBe(false);
    // sh is proposed in workspace-write (the server's default runner is unknown here): refused there, nothing runs; proposed full, it runs.
    await client.call("run/create", { alias: "n-ww" });
    const { path } = await client.call("proposal/create", { run: "n-ww", tool: "sh", command: "touch refused-probe" });
    expect((await client.call("entry/get", { run: "n-ww", path })).attributes.sandbox).toBe("workspace-write");
    const error = await client.call("run/resolve", { run: "n-ww", path, decision: "accept", runner: "no-bwrap" }).catch((e: any) => e);
    expect(error.data).toMatchObject({ code: "NO_RUNNER", sandbox: "workspace-write", modes: ["full"] });
    expect(error.message).toMatch(/cannot run this command in the workspace-write sandbox.*"sandbox": "full"/);
    expect((await client.call("entry/get", { run: "n-ww", path })).status).toBe(ENTRY.proposed);
    expect(existsSync(join(root, "refused-probe"))).toBe(false);
    const sh = await runTool(client, "n-sh", "sh", "echo still-works", { runner: "no-bwrap", sandbox: "full" });
    expect(sh.out).toBe("still-works\n");
    expect(sh.log.attributes).toMatchObject({ sandbox: "full", readOnly: false });
  });

  it("--sandbox require refuses to start a runner that has none", async () => {
    await expect(spawnRunner([...flags("must-have"), "--backend", "local", "--sandbox", "require"], { PATH: emptyPath })).rejects.toThrow(
      /--sandbox require: this backend has no read-only sandbox \(bubblewrap \(bwrap\) is not installed/,
    );
    await expect(spawnRunner([...flags("bad-mode"), "--backend", "local", "--sandbox", "maybe"])).rejects.toThrow(/--sandbox must be auto, off or require/);
  });

  it("a backend without a sandbox refuses a read-only command itself too (a runner is never talked into running it unprotected)", async () => {
    for (const backend of [new LocalBackend({ bwrap: "/nonexistent/bwrap" }), new LocalBackend({ sandbox: "off" })]) {
      expect((await backend.sandbox()).readOnly).toBe(false);
      await expect(
        backend.start({ command: `touch ${join(root, "direct-probe")}`, env: {}, readOnly: true, signal: new AbortController().signal }),
      ).rejects.toThrow(StartError);
      await backend.close();
    }
    expect(existsSync(join(root, "direct-probe"))).toBe(false);
  });
});

describeWithBwrap("read-only on a spool runner process (local backend, bubblewrap)", () => {
  let ts: TestServer;
  let runner: RunnerProcess;
  let root: string;
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    (await ts.clientIn("ro-runner")).close();
    root = realpathSync(ts.root);
    runner = await spawnRunner([
      "--server",
      ts.server.url,
      "--token-file",
      ts.server.config.tokenFile,
      "--project",
      "ro-runner",
      "--name",
      "box",
      "--backend",
      "local",
      "--default",
      "--sandbox",
      "require",
    ]);
  }, 60_000);
  afterAll(async () => {
    await runner?.stop();
    await ts?.stop();
  });

  it("says so at attach; touch in an env command fails and leaves no file", async () => {
    expect(runner.output()).toMatch(/^Sandbox: bubblewrap: read-only \(/m);
    const client = await ts.clientIn("ro-runner");
    const env = await runTool(client, "p1", "env", "touch runner-probe");
    expect(env.stdout.status).toBe(ENTRY.failed);
    expect(env.err).toMatch(/Read-only file system/);
    expect(existsSync(join(root, "runner-probe"))).toBe(false);
    expect(env.log.attributes).toMatchObject({ runner: "box", readOnly: true });
  });
});

describeWithInfra("docker", "read-only on Docker (spool runner processes)", () => {
  let ts: TestServer;
  const runners: RunnerProcess[] = [];
  const rw = `spool-test-rw-${process.pid}`;
  const ro = `spool-test-ro-${process.pid}`;
  const roNet = `spool-test-ro-net-${process.pid}`;
  const flags = (name: string) => [
    "--server",
    ts.server.url,
    "--token-file",
    ts.server.config.tokenFile,
    "--project",
    "ro-docker",
    "--name",
    name,
    "--backend",
    "docker",
  ];
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    (await ts.clientIn("ro-docker")).close();
    const image = infra.dockerImage!;
    execFileSync("docker", ["run", "-d", "--init", "--rm", "--network", "none", "--name", rw, image, "sleep", "100000"]);
    execFileSync("docker", ["run", "-d", "--init", "--rm", "--network", "none", "--read-only", "--name", ro, image, "sleep", "100000"]);
    // Read-only but with the default network: an exec keeps it, so the container is no read-only sandbox (issue 23 review, finding 5).
    execFileSync("docker", ["run", "-d", "--init", "--rm", "--read-only", "--name", roNet, image, "sleep", "100000"]);
    runners.push(await spawnRunner([...flags("fresh"), "--image", image, "--network", "host"]));
    runners.push(await spawnRunner([...flags("exec-ro"), "--container", ro]));
    runners.push(await spawnRunner([...flags("exec-rw"), "--container", rw]));
    runners.push(await spawnRunner([...flags("exec-ro-net"), "--container", roNet]));
  }, 90_000);
  afterAll(async () => {
    for (const r of runners) await r.stop();
    execFileSync("docker", ["rm", "-f", rw, ro, roNet], { stdio: "ignore" });
    await ts?.stop();
  });

  it("runner/list: fresh containers and a read-only container are sandboxed; a writable container is not", async () => {
    const client = await ts.clientIn("ro-docker");
    const { runners: listed } = await client.request("runner/list", {});
    expect(Object.fromEntries(listed.map((r: any) => [r.name, [r.sandbox.kind, r.sandbox.readOnly]]))).toEqual({
      "exec-ro": ["docker", true],
      "exec-ro-net": ["none", false],
      "exec-rw": ["none", false],
      fresh: ["docker", true],
    });
    expect(listed.find((r: any) => r.name === "exec-rw").sandbox.detail).toMatch(/writable root/);
    expect(listed.find((r: any) => r.name === "exec-ro-net").sandbox.detail).toMatch(/has a network \(network mode \w+\), which an exec keeps/);
    expect(listed.find((r: any) => r.name === "exec-ro-net").sandbox.modes).toEqual(["full"]);
  });

  it("a fresh container: touch anywhere fails (root, /tmp, /dev), no network even with --network host; sh still writes", async () => {
    const client = await ts.clientIn("ro-docker");
    const command = `touch /probe; echo "root=$?"; touch /tmp/probe; echo "tmp=$?"; touch /dev/probe; echo "dev=$?"; echo x > /dev/null; echo "null=$?"; ip link 2>/dev/null | grep -c "^[0-9]"`;
    const env = await runTool(client, "d1", "env", command, { runner: "fresh" });
    expect(env.out).toBe("root=1\ntmp=1\ndev=1\nnull=0\n1\n");
    expect(env.err).toMatch(/Read-only file system/);
    const sh = await runTool(client, "d1", "sh", "touch /probe && ls /probe", { runner: "fresh", sandbox: "full" });
    expect(sh.out).toBe("/probe\n");
  });

  it("exec in a read-only container: touch fails and leaves no file; a writable container is refused", async () => {
    const client = await ts.clientIn("ro-docker");
    const env = await runTool(client, "d2", "env", "touch /probe", { runner: "exec-ro" });
    expect(env.stdout.status).toBe(ENTRY.failed);
    expect(env.err).toMatch(/Read-only file system/);
    expect(spawnSync("docker", ["exec", ro, "ls", "/probe"]).status).not.toBe(0);
    await expectRefused(client, "d3", "touch /probe", "exec-rw");
    expect(spawnSync("docker", ["exec", rw, "ls", "/probe"]).status).not.toBe(0);
  });
});

describeWithInfra("ssh", "read-only over SSH (bubblewrap on the remote host)", () => {
  let ts: TestServer;
  const runners: RunnerProcess[] = [];
  const probe = `/tmp/spool-ro-ssh-${process.pid}`;
  const flags = (name: string) => [
    "--server",
    ts.server.url,
    "--token-file",
    ts.server.config.tokenFile,
    "--project",
    "ro-ssh",
    "--name",
    name,
    ...sshRunnerFlags(),
  ];
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    (await ts.clientIn("ro-ssh")).close();
    runners.push(await spawnRunner(flags("remote")));
    runners.push(await spawnRunner([...flags("remote-off"), "--sandbox", "off"]));
  }, 60_000);
  afterAll(async () => {
    for (const r of runners) await r.stop();
    rmSync(probe, { force: true });
    await ts?.stop();
  });

  it("the remote host's bubblewrap is found and used: touch in an env command fails and leaves no file; sh writes", async () => {
    // scripts/test-infra.sh installs bubblewrap on the sshd host (this machine).
    const backend = new SshBackend({
      host: infra.ssh!.host,
      port: infra.ssh!.port,
      username: infra.ssh!.username,
      privateKey: sshKey(),
      hostKeys: sshHostKeys(),
    });
    expect(await backend.sandbox()).toMatchObject({
      kind: "bwrap",
      readOnly: true,
      detail: expect.stringContaining(`${infra.ssh!.username}@${infra.ssh!.host}`),
      // bwrap over SSH starts no slirp4netns: a workspace-write command keeps the host's network.
      network: "shared",
    });
    await backend.close();
    const client = await ts.clientIn("ro-ssh");
    const { runners: listed } = await client.call("runner/list", {});
    expect(listed.map((r: any) => [r.name, r.sandbox.kind, r.sandbox.readOnly])).toEqual([
      ["remote", "bwrap", true],
      ["remote-off", "none", false],
    ]);
    const env = await runTool(client, "s1", "env", `touch ${probe}; echo "tmp=$?"; touch ~/probe; echo "home=$?"`, { runner: "remote" });
    expect(env.out).toBe("tmp=1\nhome=1\n");
    expect(existsSync(probe)).toBe(false);
    await expectRefused(client, "s2", `touch ${probe}`, "remote-off");
    expect(existsSync(probe)).toBe(false);
    const sh = await runTool(client, "s3", "sh", `touch ${probe} && echo made`, { runner: "remote", sandbox: "full" });
    expect(sh.out).toBe("made\n");
    expect(existsSync(probe)).toBe(true);
  });
});
