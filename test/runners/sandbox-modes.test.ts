// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import { ENTRY } from "../../src/protocol/status.js";
import { RunnerClient } from "../../src/runners/client/runner-client.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { describeWithInfra, infra, sshRunnerFlags } from "../helpers/infra.js";
import { type RunnerProcess, spawnRunner } from "../helpers/process.js";
import { finished, runTool } from "../helpers/runners.js";
import { attempts, describeWithBwrap, GIT_WRITES } from "../helpers/sandbox.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * Sandbox modes (SPEC §7 Runners, "Sandbox modes"): sh commands run in
 * workspace-write where the runner can give it — the project writable,
 * everything else read-only, the server's home and processes out of sight,
 * a /tmp of their own — the mode is recorded on the proposal before the
 * decision, and a runner that cannot give it is refused. Real bubblewrap,
 * sshd and Docker.
 */

/** A directory outside /tmp (which every sandbox has its own of), so a write that fails fails for being read-only. */
const outsideDir = (mode = 0o755) => {
  const dir = mkdtempSync("/var/tmp/spool-outside-");
  chmodSync(dir, mode);
  return dir;
};

/** The lines a workspace-write command prints about what it could do; `expected` is what a sandboxed one prints. */
const probes = (outside: string, serverPid: number, tag: string) =>
  [
    `echo made > made-${tag}.txt; echo "project=$?"`,
    `touch "$HOME/spool-ww-${tag}" 2>/dev/null; echo "home=$?"`,
    `touch ${outside}/probe-${tag} 2>/dev/null; echo "outside=$?"`,
    `[ -e /proc/${serverPid} ]; echo "server-proc=$?"`,
    `echo own > /tmp/spool-own-${tag} && cat /tmp/spool-own-${tag}`,
  ].join("; ");
// Its home is a private one (writable in workspace-write, gone with the command): the runner user's is not touched.
const expected = "project=0\nhome=0\noutside=1\nserver-proc=1\nown\n";

describeWithBwrap("workspace-write on the embedded local runner", () => {
  let ts: TestServer;
  let root: string;
  let outside: string;
  let client: SpoolClient;
  beforeAll(async () => {
    ts = await startTestServer();
    root = realpathSync(tempDir("spool-ww-root-"));
    outside = outsideDir();
    client = await ts.client();
    await client.initialize("ww-local", { root });
  });
  afterAll(async () => {
    await ts.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it("runner/list shows the modes the embedded runner offers", async () => {
    const { runners } = await client.call("runner/list", {});
    expect(runners).toEqual([
      expect.objectContaining({ name: "local", sandbox: expect.objectContaining({ modes: ["read-only", "workspace-write", "full"] }) }),
    ]);
  });

  it("each proposal records its mode before the decision: sh workspace-write, env read-only, full or read-only when asked", async () => {
    await client.call("run/create", { alias: "modes" });
    const shown = async (params: Record<string, unknown>) => {
      const notice = client.next("run/proposal", (p: any) => p.run === "modes");
      await client.request("proposal/create", { run: "modes", ...params });
      return (await notice).attributes;
    };
    expect(await shown({ tool: "sh", command: "true" })).toMatchObject({ sandbox: "workspace-write", sandboxNetwork: true, readOnly: false });
    expect(await shown({ tool: "env", command: "true" })).toMatchObject({ sandbox: "read-only", readOnly: true });
    expect(await shown({ tool: "sh", command: "true", sandbox: "full" })).toMatchObject({ sandbox: "full", readOnly: false });
    expect(await shown({ tool: "sh", command: "true", sandbox: "read-only" })).toMatchObject({ sandbox: "read-only", readOnly: true });
  });

  it("a mode that is not one, or an env command asked to run outside read-only, is INVALID_PARAMS and stores nothing", async () => {
    await client.call("run/create", { alias: "bad-mode" });
    const bad = [
      { tool: "sh", sandbox: "danger-full-access" },
      { tool: "env", sandbox: "full" },
      { tool: "env", sandbox: "workspace-write" },
    ];
    for (const params of bad) {
      const error = await client.request("proposal/create", { run: "bad-mode", command: "true", ...params }).catch((e: any) => e);
      expect(error.code).toBe(-32602);
      expect(error.data.issues).toEqual([expect.objectContaining({ path: "sandbox" })]);
    }
    expect((await client.call("entry/list", { run: "bad-mode" })).entries).toEqual([]);
  });

  it('an "always allow" rule accepts the command again in its mode, but not the same command asking for full', async () => {
    await client.call("run/create", { alias: "rule" });
    const { path } = await client.call("proposal/create", { run: "rule", tool: "sh", command: "echo ruled" });
    const first = await client.call("run/resolve", { run: "rule", path, decision: "accept", always: true });
    expect(first.rule).toEqual(expect.any(Number));
    const again = await client.call("proposal/create", { run: "rule", tool: "sh", command: "echo ruled" });
    expect((await client.call("entry/get", { run: "rule", path: again.path })).attributes).toMatchObject({ sandbox: "workspace-write", decision: "accept" });
    const full = await client.call("proposal/create", { run: "rule", tool: "sh", command: "echo ruled", sandbox: "full" });
    const waiting = await client.call("entry/get", { run: "rule", path: full.path });
    expect(waiting).toMatchObject({ status: ENTRY.proposed, attributes: { sandbox: "full" } });
    await client.call("run/resolve", { run: "rule", path: full.path, decision: "reject" });
  });

  it("a workspace-write sh command writes in the project and nowhere else, does not see the server's process, and has its own /tmp", async () => {
    const done = await runTool(client, "ww", "sh", probes(outside, process.pid, "local"));
    expect(done.out).toBe(expected);
    expect(done.log.attributes).toMatchObject({ sandbox: "workspace-write", runner: "local" });
    expect(readFileSync(join(root, "made-local.txt"), "utf8")).toBe("made\n");
    expect(existsSync(join(process.env.HOME ?? "/root", "spool-ww-local"))).toBe(false);
    expect(existsSync(join(outside, "probe-local"))).toBe(false);
    expect(existsSync("/tmp/spool-own-local")).toBe(false);
  });

  it("the network is on in workspace-write, in a namespace of its own: an interface besides loopback, and the Spool server's port out of reach (read-only: no network)", async () => {
    const connect = `${process.execPath} -e 'require("net").connect(${ts.server.port}, "127.0.0.1").on("connect", () => { console.log("connected"); process.exit(0) }).on("error", (e) => { console.log(e.code); process.exit(0) })'`;
    const own = (await client.call("runner/list", {})).runners.find((r) => r.name === "local")?.sandbox?.detail?.includes("a network namespace of their own");
    const interfaces = "grep -c -v -e '^ *lo:' -e '|' /proc/net/dev";
    // Where slirp4netns is missing, workspace-write commands keep the machine's network (and runner/list says so).
    expect((await runTool(client, "net", "sh", connect)).out).toBe(own ? "ECONNREFUSED\n" : "connected\n");
    expect((await runTool(client, "net", "sh", interfaces)).out).not.toBe("0\n");
    expect((await runTool(client, "net", "env", connect)).out).toBe("ECONNREFUSED\n");
    expect((await runTool(client, "net", "env", interfaces)).out).toBe("0\n");
  });

  it("under a terminal the command runs in the sandbox too: it has a terminal, writes in the project, not outside", async () => {
    await client.call("run/create", { alias: "tty" });
    const { path } = await client.call("proposal/create", {
      run: "tty",
      tool: "sh",
      command: `[ -t 0 ] && echo "tty=yes"; touch tty-made; echo "project=$?"; touch ${outside}/tty-probe 2>/dev/null; echo "outside=$?"`,
      tty: { cols: 80, rows: 24 },
    });
    const resolved = await client.request("run/resolve", { run: "tty", path, decision: "accept" });
    const done = await finished(client, "tty", { path, stdout: resolved.channels[0].path, stderr: resolved.channels[1].path });
    expect(done.out.toString()).toBe("tty=yes\r\nproject=0\r\noutside=1\r\n");
    expect(existsSync(join(root, "tty-made"))).toBe(true);
    expect(existsSync(join(outside, "tty-probe"))).toBe(false);
  });
});

describeWithBwrap("the sandbox settings: sandboxNetwork false, sandbox full, and a default runner without workspace-write", () => {
  const servers: TestServer[] = [];
  const runners: RunnerClient[] = [];
  let root: string;
  let outside: string;
  const serve = async (options: Parameters<typeof startTestServer>[0], project: string) => {
    const ts = await startTestServer(options);
    servers.push(ts);
    const client = await ts.client();
    await client.initialize(project, { root });
    return { ts, client };
  };
  /** A runner on a machine without bubblewrap, in-process. */
  const bare = async (ts: TestServer, project: string, name: string, asDefault: boolean) => {
    const runner = new RunnerClient({
      connect: () => SpoolClient.connect(ts.server.url, { token: ts.server.token }),
      project,
      name,
      backend: new LocalBackend({ bwrap: "/nonexistent/bwrap" }),
      default: asDefault,
      log: createLogger("silent"),
    });
    runners.push(runner);
    await runner.start();
  };
  beforeAll(() => {
    root = realpathSync(tempDir("spool-ww-settings-"));
    outside = outsideDir();
  });
  afterAll(async () => {
    for (const r of runners) await r.stop();
    for (const ts of servers) await ts.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it("sandboxNetwork false: the proposal says so and the command has no network", async () => {
    const { ts, client } = await serve({ sandboxNetwork: false }, "ww-offline");
    const connect = `${process.execPath} -e 'require("net").connect(${ts.server.port}, "127.0.0.1").on("connect", () => { console.log("connected"); process.exit(0) }).on("error", (e) => { console.log(e.code); process.exit(0) })'`;
    const done = await runTool(client, "offline", "sh", `${connect}; touch offline-made; echo "project=$?"`);
    expect(done.out).toBe("ECONNREFUSED\nproject=0\n");
    expect(done.log.attributes).toMatchObject({ sandbox: "workspace-write", sandboxNetwork: false });
  });

  it('sandbox "full" in the configuration: sh proposals say full and run as the runner\'s user (they write outside the project)', async () => {
    const { client } = await serve({ sandbox: "full" }, "ww-full");
    const done = await runTool(client, "full", "sh", `touch ${outside}/full-probe; echo "outside=$?"`);
    expect(done.out).toBe("outside=0\n");
    expect(done.log.attributes).toMatchObject({ sandbox: "full" });
    expect(existsSync(join(outside, "full-probe"))).toBe(true);
  });

  it('"auto" with a default runner that has no sandbox: the proposal says full and why, before the decision', async () => {
    const { ts, client } = await serve({ localRunner: false }, "ww-auto");
    await bare(ts, "ww-auto", "bare", true);
    await client.call("run/create", { alias: "auto" });
    const notice = client.next("run/proposal", (p: any) => p.run === "auto");
    await client.call("proposal/create", { run: "auto", tool: "sh", command: "echo ran" });
    const { attributes, path } = await notice;
    expect(attributes).toMatchObject({ sandbox: "full", readOnly: false });
    expect(attributes.sandboxReason).toMatch(
      /^runner "bare" has no workspace-write sandbox \(bubblewrap .*not installed.*\); set "sandbox": "workspace-write"/,
    );
    const resolved = await client.request("run/resolve", { run: "auto", path, decision: "accept" });
    const done = await finished(client, "auto", { path, stdout: resolved.channels[0].path, stderr: resolved.channels[1].path });
    expect(done.out.toString()).toBe("ran\n");
  });

  it('an "always allow" rule made in workspace-write does not accept the command once it would run in full; one made in full does', async () => {
    const { ts, client } = await serve({}, "ww-widen");
    await client.call("run/create", { alias: "widen" });
    const command = "echo widened";
    const { path } = await client.call("proposal/create", { run: "widen", tool: "sh", command });
    const resolved = await client.request("run/resolve", { run: "widen", path, decision: "accept", always: true });
    expect(resolved.rule).toEqual(expect.any(Number));
    await finished(client, "widen", { path, stdout: resolved.channels[0].path, stderr: resolved.channels[1].path });
    expect((await client.call("entry/get", { run: "widen", path })).attributes).toMatchObject({ sandbox: "workspace-write" });
    // A runner without a sandbox becomes the default: "auto" now records full for the same command.
    await bare(ts, "ww-widen", "bare", true);
    const wider = await client.call("proposal/create", { run: "widen", tool: "sh", command });
    const waiting = await client.call("entry/get", { run: "widen", path: wider.path });
    expect(waiting).toMatchObject({ status: ENTRY.proposed, attributes: { sandbox: "full" } });
    expect(waiting.attributes.decision).toBeUndefined();
    // Accepted by a person in full with "always": that rule accepts the command in full from then on.
    const second = await client.request("run/resolve", { run: "widen", path: wider.path, decision: "accept", always: true });
    expect(second.rule).not.toBe(resolved.rule);
    await finished(client, "widen", { path: wider.path, stdout: second.channels[0].path, stderr: second.channels[1].path });
    const again = await client.call("proposal/create", { run: "widen", tool: "sh", command });
    const ruled = await client.call("entry/get", { run: "widen", path: again.path });
    expect(ruled.attributes).toMatchObject({ sandbox: "full", decision: "accept", runner: "bare" });
    expect(ruled.attributes.resolvedBy).toContain(`rule #${second.rule}`);
  });

  it('"workspace-write" in the configuration: recorded whatever the runner, and an accept on one that cannot give it is refused, changing nothing', async () => {
    const { ts, client } = await serve({ localRunner: false, sandbox: "workspace-write" }, "ww-strict");
    await bare(ts, "ww-strict", "bare", true);
    await client.call("run/create", { alias: "strict" });
    const { path } = await client.call("proposal/create", { run: "strict", tool: "sh", command: "touch strict-probe" });
    const error = await client.call("run/resolve", { run: "strict", path, decision: "accept" }).catch((e: any) => e);
    expect(error.data).toMatchObject({ code: "NO_RUNNER", runner: "bare", sandbox: "workspace-write", modes: ["full"] });
    const log = await client.call("entry/get", { run: "strict", path });
    expect(log).toMatchObject({ status: ENTRY.proposed, attributes: { sandbox: "workspace-write" } });
    expect(log.attributes.runner).toBeUndefined();
    expect(await client.call("entry/list", { run: "strict", pattern: "sh://*" })).toEqual({ entries: [] });
    expect(existsSync(join(root, "strict-probe"))).toBe(false);
  });
});

// The SSH host is this machine (scripts/test-infra.sh): its bubblewrap is the one the runner's probe finds there.
describeWithBwrap("workspace-write over SSH", () =>
  describeWithInfra("ssh", "bubblewrap on the remote host", () => {
    let ts: TestServer;
    let runner: RunnerProcess;
    let client: SpoolClient;
    let root: string;
    let outside: string;
    // The login's home and ids on this machine (the SSH host).
    const login = infra.ssh?.username ?? "spoolrunner";
    const [, , uid, gid, , remoteHome = ""] = execFileSync("getent", ["passwd", login], { encoding: "utf8" }).trim().split(":");
    const remoteToken = join(remoteHome, ".spool", "token");
    let madeToken = false;
    beforeAll(async () => {
      ts = await startTestServer({ localRunner: false });
      (await ts.clientIn("ww-ssh")).close();
      // The project on the remote host: a directory its login may write (the SSH user is another user of this machine).
      root = outsideDir(0o777);
      outside = outsideDir(0o777);
      if (!existsSync(remoteToken)) {
        mkdirSync(join(remoteHome, ".spool"), { recursive: true });
        writeFileSync(remoteToken, "remote-runner-token\n", { mode: 0o600 });
        chownSync(join(remoteHome, ".spool"), Number(uid), Number(gid));
        chownSync(remoteToken, Number(uid), Number(gid));
        madeToken = true;
      }
      runner = await spawnRunner([
        "--server",
        ts.server.url,
        "--token-file",
        ts.server.config.tokenFile,
        "--project",
        "ww-ssh",
        "--name",
        "remote",
        "--default",
        ...sshRunnerFlags(root),
      ]);
      client = await ts.clientIn("ww-ssh");
    }, 60_000);
    afterAll(async () => {
      await runner?.stop();
      await ts?.stop();
      if (madeToken) rmSync(join(remoteHome, ".spool"), { recursive: true, force: true });
      rmSync(root, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    });

    it("the runner lists the modes; a workspace-write command writes in --root only, sees no server process, its /tmp is its own, ~/.spool is hidden", async () => {
      expect(runner.output()).toMatch(/Sandbox modes: read-only, workspace-write, full/);
      const done = await runTool(client, "ssh-ww", "sh", `${probes(outside, process.pid, "ssh")}; cat ~/.spool/token 2>/dev/null | wc -c`);
      expect(done.out).toBe(`${expected}0\n`);
      expect(done.log.attributes).toMatchObject({ sandbox: "workspace-write", runner: "remote" });
      expect(readFileSync(join(root, "made-ssh.txt"), "utf8")).toBe("made\n");
      expect(existsSync(join(remoteHome, "spool-ww-ssh"))).toBe(false);
      expect(existsSync(join(outside, "probe-ssh"))).toBe(false);
      expect(existsSync("/tmp/spool-own-ssh")).toBe(false);
    });

    it("the project's .git and one below it are read-only there too, though the login owns them; the rest is writable", async () => {
      const made = [".git", ".git/hooks", "vendor", "vendor/lib", "vendor/lib/.git"];
      for (const dir of made) mkdirSync(join(root, dir), { recursive: true });
      writeFileSync(join(root, ".git", "config"), "[core]\n");
      writeFileSync(join(root, "vendor", "lib", ".git", "config"), "[core]\n");
      for (const path of [...made, ".git/config", "vendor/lib/.git/config"]) chownSync(join(root, path), Number(uid), Number(gid));
      const tries: [string, string][] = [...GIT_WRITES, ["nested", "echo x >> vendor/lib/.git/config"], ["made", "echo x > vendor/lib/made"]];
      const done = await runTool(client, "ssh-git", "sh", attempts(tries));
      expect(done.log.attributes).toMatchObject({ sandbox: "workspace-write", runner: "remote" });
      expect(done.out).toBe("git-config=refused\ngit-hook=refused\ngit-moved=refused\nnested=refused\nmade=written\n");
      expect(readFileSync(join(root, ".git", "config"), "utf8")).toBe("[core]\n");
    });

    it("a git directory made there (git init, a bare one by hand) is unknown to git once the sandbox has ended, and its stderr says so; one already there is read-only", async () => {
      const made = ["old.git", "old.git/objects", "old.git/refs", "nest", "nest/inner", "nest/inner/.git", "nest/inner/.git/refs"];
      for (const dir of made) mkdirSync(join(root, dir), { recursive: true });
      for (const dir of ["old.git", "nest/inner/.git"]) writeFileSync(join(root, dir, "HEAD"), "ref: refs/heads/main\n");
      writeFileSync(join(root, "old.git", "config"), "[core]\n");
      for (const path of [...made, "old.git/HEAD", "old.git/config", "nest/inner/.git/HEAD"]) chownSync(join(root, path), Number(uid), Number(gid));
      const tries: [string, string][] = [
        ["bare-config", "echo x >> old.git/config"],
        ["init", "git init -q 'new repo'"],
        ["bare", "mkdir -p evil/objects evil/refs && echo 'ref: refs/heads/main' > evil/HEAD"],
        ["gitfile", "mkdir -p pointer && echo 'gitdir: ../evil' > pointer/.git"],
        // A read-only mount moved away with its parent, and a repository made in its place.
        ["moved", "mv nest nest.moved && mkdir -p nest/inner && git init -q nest/inner"],
      ];
      const done = await runTool(client, "ssh-made", "sh", attempts(tries));
      expect(done.out).toBe("bare-config=refused\ninit=written\nbare=written\ngitfile=written\nmoved=written\n");
      expect(readFileSync(join(root, "old.git", "config"), "utf8")).toBe("[core]\n");
      for (const dir of ["new repo/.git", "evil", "nest/inner/.git", "nest.moved/inner/.git"]) {
        expect(existsSync(join(root, dir, "HEAD")), dir).toBe(false);
        expect(existsSync(join(root, dir, "HEAD.spool-untrusted")), dir).toBe(true);
        expect(done.err).toContain(
          `spool: ${dir} is a git directory this command could write; git runs what a repository's config and hooks name wherever the person runs git there, so ${dir}/HEAD was renamed HEAD.spool-untrusted`,
        );
      }
      expect(existsSync(join(root, "pointer", ".git.spool-untrusted"))).toBe(true);
      expect(done.err).toContain("spool: pointer/.git is a .git file this command could write");
      expect(done.err).not.toContain("old.git");
    });

    it("proposed full, the same command reaches what the login can (its home, outside the project)", async () => {
      const done = await runTool(client, "ssh-full", "sh", `touch ${outside}/full-probe; echo "outside=$?"`, { sandbox: "full" });
      expect(done.out).toBe("outside=0\n");
      expect(existsSync(join(outside, "full-probe"))).toBe(true);
    });
  }),
);

describeWithInfra("docker", "workspace-write on Docker: only the project is mounted read-write", () => {
  let ts: TestServer;
  let runner: RunnerProcess;
  let client: SpoolClient;
  let root: string;
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    root = realpathSync(tempDir("spool-ww-docker-"));
    const first = await ts.client();
    await first.initialize("ww-docker", { root });
    first.close();
    runner = await spawnRunner([
      "--server",
      ts.server.url,
      "--token-file",
      ts.server.config.tokenFile,
      "--project",
      "ww-docker",
      "--name",
      "fresh",
      "--default",
      "--backend",
      "docker",
      "--image",
      infra.dockerImage!,
    ]);
    client = await ts.client();
    await client.initialize("ww-docker", { root });
  }, 90_000);
  afterAll(async () => {
    await runner?.stop();
    await ts?.stop();
    // Files the container made belong to its user: removed through a container too.
    execFileSync("docker", ["run", "--rm", "-v", `${root}:/w`, infra.dockerImage!, "sh", "-c", "rm -rf /w/*"], { stdio: "ignore" });
    rmSync(root, { recursive: true, force: true });
  });

  it("the project and a private /tmp are the writable mounts; the root and the rest are read-only", async () => {
    const command = [
      `touch made-in-docker; echo "project=$?"`,
      `touch /probe 2>/dev/null; echo "root=$?"`,
      `touch /tmp/probe; echo "tmp=$?"`,
      `grep -E ' rw[ ,]' /proc/mounts | cut -d' ' -f2 | grep -v -e '^/proc' -e '^/dev' -e '^/sys' | sort`,
    ].join("; ");
    const done = await runTool(client, "dw", "sh", command);
    expect(done.log.attributes).toMatchObject({ sandbox: "workspace-write", runner: "fresh" });
    expect(done.out).toBe(`project=0\nroot=1\ntmp=0\n${[root, "/tmp"].sort().join("\n")}\n`);
    expect(existsSync(join(root, "made-in-docker"))).toBe(true);
  });

  it("git's directory and a login's files in the project stay read-only, as on the local runner; the rest is writable", async () => {
    mkdirSync(join(root, ".git", "hooks"), { recursive: true });
    writeFileSync(join(root, ".git", "config"), "[core]\n");
    writeFileSync(join(root, ".bashrc"), "# login\n");
    mkdirSync(join(root, "vendor", "lib", ".git"), { recursive: true });
    writeFileSync(join(root, "vendor", "lib", ".git", "config"), "[core]\n");
    const tries: [string, string][] = [
      ...GIT_WRITES,
      ["nested", "echo x >> vendor/lib/.git/config"],
      ["bashrc", "echo x >> .bashrc"],
      ["made", "echo x > made-beside"],
    ];
    const command = attempts(tries);
    const done = await runTool(client, "dw-git", "sh", command);
    expect(done.log.attributes).toMatchObject({ sandbox: "workspace-write", runner: "fresh" });
    expect(done.out).toBe("git-config=refused\ngit-hook=refused\ngit-moved=refused\nnested=refused\nbashrc=refused\nmade=written\n");
    expect(readFileSync(join(root, ".git", "config"), "utf8")).toBe("[core]\n");
  });

  it("a git directory the container could write (a .git, a bare one) is unknown to git once it has ended, as on the local runner, and its stderr says so", async () => {
    const made =
      "mkdir -p sub/.git/objects sub/.git/refs bare/objects bare/refs && echo 'ref: refs/heads/main' | tee sub/.git/HEAD > bare/HEAD && echo '[core]' | tee sub/.git/config > bare/config";
    const done = await runTool(client, "dw-made", "sh", made);
    expect(done.log.attributes).toMatchObject({ sandbox: "workspace-write", runner: "fresh" });
    for (const dir of ["sub/.git", "bare"]) {
      expect(existsSync(join(root, dir, "HEAD")), dir).toBe(false);
      expect(existsSync(join(root, dir, "HEAD.spool-untrusted")), dir).toBe(true);
      expect(done.err).toContain(`spool: ${dir} is a git directory this command could write; git runs what a repository's config and hooks name`);
    }
    // The project's own, read-only while it ran, are as they were.
    expect(existsSync(join(root, ".git", "config"))).toBe(true);
    expect(done.err).not.toContain("vendor/lib");
  });

  it("a project rooted in the server's home is refused (issue 37): the server's own files are in no project", async () => {
    const home = await ts.client();
    await expect(home.initialize("ww-docker-home", { root: ts.home })).rejects.toMatchObject({ errorCode: "INVALID_PARAMS" });
  });
});
