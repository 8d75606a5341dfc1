import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { factsText, proposalFacts } from "../../src/protocol/proposal-facts.js";
import { hostConfigFrom } from "../../src/runners/ssh/config.js";
import { describeWithInfra, infra, sshRoot } from "../helpers/infra.js";
import { spawnCli, spawnRunner } from "../helpers/process.js";
import { runTool } from "../helpers/runners.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * `spool runner --backend ssh --ssh-host NAME` reaches the host `ssh NAME` reaches: OpenSSH's own reading of its
 * configuration (`ssh -G`) gives the host name, port, login, keys, known_hosts files and HostKeyAlias the flags leave
 * out, and without --ssh-key the runner logs in with the agent's keys and the configuration's IdentityFiles. A host
 * reached through a jump host, or no key at all, ends the runner at once saying what to do.
 */
describeWithInfra("ssh", "spool runner (ssh) from the ssh configuration", () => {
  let ts: TestServer;
  let client: SpoolClient;
  const dir = tempDir("spool-ssh-config-");
  const agents: ChildProcess[] = [];
  const base = (name: string) => ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "ssh-config", "--name", name];
  /** A private key of the test login, copied where ssh-add and ssh will take it (mode 0600). */
  const key = join(dir, "id_test");
  /** The same key with a passphrase on disk (its public half beside it), as people keep keys the agent holds. */
  const locked = join(dir, "id_locked");
  const other = join(dir, "id_other");
  const knownHosts = join(dir, "known_hosts");

  /** An ssh_config file holding `body` under `Host NAME`. */
  const config = (name: string, body: string[]) => {
    const file = join(dir, `config-${name}`);
    writeFileSync(file, `Host ${name}\n${body.map((line) => `  ${line}\n`).join("")}`, { mode: 0o600 });
    return file;
  };
  /** The lines that reach the test sshd as its login, and trust its key from a known_hosts file. */
  const reach = () => {
    const ssh = infra.ssh!;
    return [`HostName ${ssh.host}`, `Port ${ssh.port}`, `User ${ssh.username}`, `UserKnownHostsFile ${knownHosts}`, "GlobalKnownHostsFile /dev/null"];
  };
  /** An ssh-agent of its own holding `keys`; its socket. */
  const agent = async (name: string, keys: string[]) => {
    const socket = join(dir, `agent-${name}.sock`);
    const child = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
    agents.push(child);
    await eventually(() => existsSync(socket), 10_000, `ssh-agent's socket ${socket}`);
    for (const file of keys) execFileSync("ssh-add", ["-q", file], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: "ignore" });
    return socket;
  };
  /** `spool runner` with `flags` that is expected to end before attaching: its exit code and stderr. */
  const refused = async (name: string, flags: string[], env: NodeJS.ProcessEnv = {}) => {
    const cli = spawnCli(["runner", ...base(name), "--root", sshRoot(), "--backend", "ssh", ...flags], { SSH_AUTH_SOCK: "", ...env });
    const timer = setTimeout(() => cli.child.kill("SIGKILL"), 30_000);
    const code = await cli.exit;
    clearTimeout(timer);
    return { code, stderr: cli.stderr(), stdout: cli.stdout() };
  };
  /** Starts a runner with `flags`, checks it attached with the ssh backend (then `attached`, if given), and stops it. */
  const attaches = async (name: string, flags: string[], env: NodeJS.ProcessEnv = {}, attached?: () => Promise<void>) => {
    const runner = await spawnRunner([...base(name), "--root", sshRoot(), "--backend", "ssh", ...flags], { SSH_AUTH_SOCK: "", ...env });
    try {
      const listed = (await client.call("runner/list", {})).runners;
      expect(listed).toEqual(expect.arrayContaining([expect.objectContaining({ name, backend: "ssh" })]));
      await attached?.();
    } finally {
      await runner.stop();
    }
  };

  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    client = await ts.clientIn("ssh-config");
    copyFileSync(infra.ssh!.keyFile, key);
    execFileSync("chmod", ["600", key]);
    copyFileSync(key, locked);
    execFileSync("ssh-keygen", ["-q", "-p", "-P", "", "-N", "a passphrase", "-f", locked]);
    writeFileSync(`${locked}.pub`, execFileSync("ssh-keygen", ["-y", "-f", key]));
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
    writeFileSync(knownHosts, `[${infra.ssh!.host}]:${infra.ssh!.port} ${readFileSync(infra.ssh!.hostKeyFile, "utf8")}`);
  });
  afterAll(async () => {
    for (const child of agents) child.kill();
    await ts.stop();
  });

  it("a Host of the configuration: its HostName, Port, User, IdentityFile and known_hosts file, no other flag", async () => {
    const file = config("build-box", [...reach(), `IdentityFile ${key}`]);
    await attaches("by-alias", ["--ssh-host", "build-box", "--ssh-config", file]);
  });

  it("keys in ssh-agent alone: the agent signs the login, and a command there sees no agent", async () => {
    const socket = await agent("plain", [key]);
    const file = config("agent-box", [...reach(), `IdentityFile ${join(dir, "no-such-key")}`]);
    await attaches("by-agent", ["--ssh-host", "agent-box", "--ssh-config", file], { SSH_AUTH_SOCK: socket }, async () => {
      // No agent of the runner's is there to reach (the connection asks for no forwarding, and a command's environment
      // holds the login's four names alone).
      const ran = await runTool(client, "agent-run", "sh", `echo "agent=\${SSH_AUTH_SOCK:-none}"`, { runner: "by-agent", sandbox: "full" });
      expect(ran.out).toBe("agent=none\n");
    });
    // The socket named by IdentityAgent, with no SSH_AUTH_SOCK at all.
    const named = config("agent-named", [...reach(), `IdentityAgent ${socket}`, `IdentityFile ${join(dir, "no-such-key")}`]);
    await attaches("by-identity-agent", ["--ssh-host", "agent-named", "--ssh-config", named]);
  });

  it("IdentitiesOnly: a key with a passphrase on disk is used through the agent; an agent's other keys are not offered", async () => {
    const holding = await agent("holding", [key, other]);
    const file = config("only-box", [...reach(), `IdentityFile ${locked}`, "IdentitiesOnly yes"]);
    await attaches("identities-only", ["--ssh-host", "only-box", "--ssh-config", file], { SSH_AUTH_SOCK: holding });
    const unrelated = await agent("unrelated", [other]);
    const failed = await refused("identities-only-2", ["--ssh-host", "only-box", "--ssh-config", file], { SSH_AUTH_SOCK: unrelated });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/^spool runner: ssh \S+: login refused — check --ssh-user, and that one of the keys tried \(the agent's keys\) is in/);
    expect(failed.stdout).not.toMatch(/attached/);
  });

  it("a host key known under the configuration's HostKeyAlias", async () => {
    const aliased = join(dir, "known_hosts_alias");
    writeFileSync(aliased, `build-alias ${readFileSync(infra.ssh!.hostKeyFile, "utf8")}`);
    const body = [...reach().filter((line) => !line.startsWith("UserKnownHostsFile")), `UserKnownHostsFile ${aliased}`, `IdentityFile ${key}`];
    await attaches("host-key-alias", ["--ssh-host", "aliased", "--ssh-config", config("aliased", [...body, "HostKeyAlias build-alias"])]);
    // Without the alias, the same file holds no key for [host]:port.
    const failed = await refused("no-alias", ["--ssh-host", "unaliased", "--ssh-config", config("unaliased", body)]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`no key for this host in ${aliased}, /dev/null`);
  });

  it("without --root, the commands run in the login's directory, and the card says so (`~`)", async () => {
    const ssh = infra.ssh!;
    const flags = ["--ssh-host", ssh.host, "--ssh-port", String(ssh.port), "--ssh-user", ssh.username, "--ssh-key", key, "--ssh-host-key", ssh.hostKeyFile];
    const runner = await spawnRunner([...base("no-root"), "--backend", "ssh", ...flags], { SSH_AUTH_SOCK: "" });
    try {
      await client.call("run/create", { alias: "login-dir" });
      const notice = client.next("run/proposal", (p: { run: string }) => p.run === "login-dir");
      const { path } = await client.call("proposal/create", { run: "login-dir", tool: "sh", command: "pwd", runner: "no-root", sandbox: "full" });
      const facts = proposalFacts(((await notice) as { producer: Record<string, unknown> }).producer);
      expect(factsText(facts)).toMatch(new RegExp(`^cwd +~ \\(the project root on the runner; the server's is ${ts.root}\\)$`, "m"));
      await client.call("run/resolve", { run: "login-dir", path, decision: "reject" });
      const ran = await runTool(client, "login-dir", "sh", "pwd", { runner: "no-root", sandbox: "full" });
      expect(ran.out).toBe(`/home/${ssh.username}\n`);
    } finally {
      await runner.stop();
    }
  });

  it("refusals before anything connects: a jump host, no key at all, a configuration ssh cannot read", async () => {
    const jump = await refused("jump", ["--ssh-host", "behind", "--ssh-config", config("behind", [...reach(), `IdentityFile ${key}`, "ProxyJump bastion"])]);
    expect(jump.code).toBe(1);
    expect(jump.stderr).toBe(
      `spool runner: ssh behind: the ssh configuration reaches it through ProxyJump bastion, which spool runner does not follow — run the runner where ${infra.ssh!.host} is reached directly, or forward its port and pass --ssh-host and --ssh-port\n`,
    );
    const none = await refused("no-key", ["--ssh-host", "keyless", "--ssh-config", config("keyless", [...reach(), `IdentityFile ${locked}`])]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(
      /^spool runner: ssh \S+: no key to log in with \(no agent; skipped \S+id_locked \(has a passphrase\)\) — pass --ssh-key FILE, or add the key to ssh-agent \(SSH_AUTH_SOCK\)\n$/,
    );
    const unreadable = await refused("bad-config", ["--ssh-host", "x", "--ssh-config", join(dir, "no-such-config")]);
    expect(unreadable.code).toBe(1);
    const missing = join(dir, "no-such-config");
    expect(unreadable.stderr).toBe(
      `spool runner: ssh -G x: Can't open user config file ${missing}: No such file or directory — check --ssh-config ${missing}\n`,
    );
    expect((await client.call("runner/list", {})).runners).toEqual([]);
  });

  it("reads `ssh -G`'s words: ssh's tokens and ~ in paths, several known_hosts files, IdentityAgent and the proxy lines", () => {
    const home = process.env.HOME!;
    const read = hostConfigFrom(
      "alias",
      [
        "hostname build.example",
        "port 2200",
        "user ci",
        "identityfile ~/.ssh/id_%r@%h",
        "identityfile %d/keys/%n",
        "identitiesonly yes",
        "identityagent none",
        "userknownhostsfile ~/.ssh/known_hosts ~/.ssh/known_hosts2",
        "globalknownhostsfile /etc/ssh/ssh_known_hosts",
        "proxycommand nc %h %p",
      ].join("\n"),
      { HOME: home },
    );
    expect(read).toMatchObject({
      hostname: "build.example",
      port: 2200,
      user: "ci",
      identitiesOnly: true,
      agent: null,
      proxy: "ProxyCommand nc %h %p",
      hostKeyAlias: null,
    });
    expect(read.identityFiles).toEqual([expect.stringMatching(/\/\.ssh\/id_ci@build\.example$/), expect.stringMatching(/\/keys\/alias$/)]);
    expect(read.knownHostsFiles).toHaveLength(3);
    expect(hostConfigFrom("a", "hostname a\nproxyjump none", { SSH_AUTH_SOCK: "/run/agent" })).toMatchObject({ proxy: null, agent: "/run/agent" });
  });
});
