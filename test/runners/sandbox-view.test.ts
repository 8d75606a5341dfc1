// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { factValue, proposalFacts } from "../../src/protocol/proposal-facts.js";
import { ENTRY } from "../../src/protocol/status.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { describeWithInfra, infra, sshRoot } from "../helpers/infra.js";
import { type RunnerProcess, runCli, type ServeProcess, spawnRunner, spawnServe } from "../helpers/process.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { finished, runTool } from "../helpers/runners.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";
import { MODES, probe, refusal, split, viewSpec } from "../helpers/view-probe.js";

/**
 * Issue 73: a sandboxed command's view is built from what it needs, never from what is known to be secret. Secrets
 * live where Spool cannot know: an MCP client's config holding a token (~/.claude.json), ~/.pgpass, a token saved in
 * the home with `spool token create … > file`, the SSH runner's key kept outside ~/.ssh, a Spool home started while
 * the command runs, one recorded in another registry or under another HOME and XDG_STATE_HOME. A read-only and a
 * workspace-write command reads none of them, and the mount table inside names none of them (hiding by mounting
 * listed every hidden path there). Real `spool serve`, `spool runner` and `spool token` processes, real bubblewrap,
 * sshd and Docker, as root.
 */

describeWithBwrap("what a sandboxed command sees on the local runner: nothing of any home (issue 73)", () => {
  let outside: string;
  let home: string;
  let spoolHome: string;
  let root: string;
  let serve: ServeProcess;
  let token: string;
  let client: SpoolClient;
  let secrets: { claude: string; pgpass: string; saved: string; ssh: string; server: string };
  const later: ServeProcess[] = [];
  beforeAll(async () => {
    outside = realpathSync(mkdtempSync("/var/tmp/spool-view-"));
    // The server's user's home, with its Spool home in it as by default, and a project under it.
    home = join(outside, "home");
    spoolHome = join(home, ".spool");
    root = join(home, "work", "app");
    mkdirSync(root, { recursive: true });
    serve = await spawnServe(["--home", spoolHome, "--port", "0"], { HOME: home });
    token = readFileSync(join(spoolHome, "token"), "utf8").trim();
    client = await SpoolClient.connect(serve.url, { token });
    await client.initialize("view", { root });
    // Where secrets live that Spool cannot know: an MCP client's config holding the admin token (the recipe this issue
    // removes wrote it there), ~/.pgpass, a token saved in the home by `spool token create … > file`, an SSH key.
    const saved = await runCli(["token", "create", "saved", "--role", "agent", "--project", "view"], { SPOOL_HOME: spoolHome, HOME: home }, home, 60_000);
    expect(saved.code, saved.err).toBe(0);
    secrets = {
      claude: join(home, ".claude.json"),
      pgpass: join(home, ".pgpass"),
      saved: join(home, "agent.token"),
      ssh: join(home, ".ssh", "id_ed25519"),
      server: join(spoolHome, "token"),
    };
    writeFileSync(secrets.claude, JSON.stringify({ mcpServers: { spool: { headers: { Authorization: `Bearer ${token}` } } } }), { mode: 0o600 });
    writeFileSync(secrets.pgpass, "127.0.0.1:5432:*:postgres:pgpass-secret-73\n", { mode: 0o600 });
    writeFileSync(secrets.saved, saved.out, { mode: 0o600 });
    mkdirSync(join(home, ".ssh"), { mode: 0o700 });
    writeFileSync(secrets.ssh, "-----BEGIN OPENSSH PRIVATE KEY-----\nssh-secret-73\n", { mode: 0o600 });
  }, 120_000);
  afterAll(async () => {
    client?.close();
    for (const s of later) await s.stop();
    await serve?.stop();
    rmSync(outside, { recursive: true, force: true });
  });

  /** What must never appear in a command's output: the tokens and the files' contents. */
  const words = () => [token, "pgpass-secret-73", "ssh-secret-73", readFileSync(secrets.saved, "utf8").trim()];

  for (const [mode, tool] of MODES) {
    it(`${mode}: no MCP client config, ~/.pgpass, saved token, SSH key nor Spool home is readable; the home is private; the mount table names none`, async () => {
      const done = await runTool(client, `home-${tool}`, tool, probe(Object.values(secrets)));
      expect(done.log.attributes.sandbox).toBe(mode);
      const { seen, mountinfo } = split(done.out);
      for (const word of words()) expect(done.out).not.toContain(word);
      expect(seen).not.toContain("read ");
      // The private home holds only the way to the project.
      expect(seen).toBe("work\n");
      for (const path of [...Object.values(secrets), spoolHome, join(home, ".ssh")]) expect(mountinfo).not.toContain(path);
      // What it saw was shown before the decision: the private home, and nothing else of it.
      const facts = factValue(proposalFacts(done.log.attributes), "sandbox");
      expect(facts).toContain(`a private /tmp and home (${home})`);
      expect(facts).toMatch(/; nothing else\)$/);
      expect(facts).not.toContain(".spool");
    });
  }

  for (const [mode, tool] of MODES) {
    it(`${mode}: a Spool home started while the command runs (another HOME and XDG_STATE_HOME), and one in another registry, are not in view`, async () => {
      // One started before, recorded in a registry of its own (SPOOL_REGISTRY); one started while the command waits,
      // under another HOME and XDG_STATE_HOME (its registry there): neither is in this server's registry.
      const other = join(outside, `other-${tool}`);
      const late = join(outside, `late-${tool}`);
      later.push(
        await spawnServe(["--home", join(other, ".spool"), "--port", "0", "--no-local-runner"], {
          HOME: other,
          SPOOL_REGISTRY: join(outside, `registry-${tool}`),
        }),
      );
      const go = join(root, `go-${tool}`);
      const files = [join(other, ".spool", "token"), join(late, ".spool", "token")];
      const command = `echo waiting; while [ ! -e ${go} ]; do sleep 0.05; done; ${probe(files)}`;
      const paths = await proposeAndAccept(client, client, `later-${tool}`, command, { tool });
      await eventually(
        async () =>
          Buffer.from((await client.call("entry/get", { run: `later-${tool}`, path: paths.stdout, encoding: "base64" })).body, "base64").includes("waiting"),
        30_000,
        "the command to wait",
      );
      later.push(
        await spawnServe(["--home", join(late, ".spool"), "--port", "0", "--no-local-runner"], {
          HOME: late,
          XDG_STATE_HOME: join(late, "state"),
          SPOOL_REGISTRY: "",
        }),
      );
      expect(existsSync(join(late, "state", "spool", "state-paths"))).toBe(true);
      const tokens = files.map((file) => readFileSync(file, "utf8").trim());
      writeFileSync(go, "");
      const done = await finished(client, `later-${tool}`, paths, 60_000);
      const out = done.out.toString();
      const { seen, mountinfo } = split(out);
      for (const word of tokens) expect(out).not.toContain(word);
      expect(seen).toBe("waiting\nwork\n");
      for (const path of [other, late]) expect(mountinfo).not.toContain(path);
    }, 120_000);
  }

  describeWithInfra("ssh", "the SSH runner's key", () => {
    let keys: string;
    beforeAll(() => {
      keys = join(outside, "keys");
      mkdirSync(keys, { mode: 0o700 });
    });
    const sshRunner = async (name: string, key: string) => {
      copyFileSync(infra.ssh!.keyFile, key);
      chmodSync(key, 0o600);
      const ssh = infra.ssh!;
      const args = ["--server", serve.url, "--token-file", join(spoolHome, "token"), "--project", "view", "--name", name, "--root", sshRoot()];
      const flags = ["--backend", "ssh", "--ssh-host", ssh.host, "--ssh-port", String(ssh.port), "--ssh-user", ssh.username, "--ssh-key", key];
      return spawnRunner([...args, ...flags, "--ssh-host-key", ssh.hostKeyFile], { SPOOL_HOME: join(outside, `runner-${name}`), HOME: home });
    };

    it("kept outside ~/.ssh, it is not readable from a local sandbox in either mode, nor named by its mount table", async () => {
      const key = join(keys, "ci_key");
      const runner = await sshRunner("ci", key);
      try {
        const privateKey = readFileSync(key, "utf8");
        for (const [, tool] of MODES) {
          const done = await runTool(client, `key-${tool}`, tool, probe([key]), { runner: "local" });
          const { seen, mountinfo } = split(done.out);
          expect(done.out).not.toContain(privateKey.split("\n")[1]);
          expect(seen).toBe("work\n");
          expect(mountinfo).not.toContain(keys);
        }
      } finally {
        await runner.stop();
      }
    }, 120_000);

    it("kept in the project, every sandboxed command there is refused, naming it (a known secret is a check, never a mount)", async () => {
      const key = join(root, "deploy_key");
      const runner = await sshRunner("deploy", key);
      try {
        const done = await runTool(client, "key-in-project", "sh", "echo ran", { runner: "local" });
        expect(done.out).toBe("");
        expect(done.stdout.status).toBe(ENTRY.cancelled);
        expect(JSON.stringify(done.log)).toContain(`would hold ${key} (through ${root})`);
      } finally {
        await runner.stop();
        rmSync(key);
      }
      // Gone from the project, the project runs again.
      expect((await runTool(client, "key-gone", "sh", "echo ran", { runner: "local" })).out).toBe("ran\n");
    }, 120_000);
  });

  describeWithInfra("docker", "a Docker runner on the same machine (spool runner --backend docker)", () => {
    let runner: RunnerProcess;
    beforeAll(async () => {
      const args = ["--server", serve.url, "--token-file", join(spoolHome, "token"), "--project", "view", "--name", "box"];
      runner = await spawnRunner([...args, "--backend", "docker", "--image", infra.dockerImage!], { SPOOL_HOME: join(outside, "runner-box"), HOME: home });
    }, 120_000);
    afterAll(async () => {
      await runner?.stop();
    });

    for (const [mode, tool] of MODES) {
      it(`${mode}: no MCP client config, ~/.pgpass, saved token, SSH key, Spool home started while it runs or recorded in another registry is there; the mount table names none`, async () => {
        // One recorded in a registry of its own before the command; one started while the command waits, under another HOME.
        const other = join(outside, `docker-other-${tool}`);
        const late = join(outside, `docker-late-${tool}`);
        later.push(
          await spawnServe(["--home", join(other, ".spool"), "--port", "0", "--no-local-runner"], {
            HOME: other,
            SPOOL_REGISTRY: join(outside, `docker-registry-${tool}`),
          }),
        );
        const files = [...Object.values(secrets), join(other, ".spool", "token"), join(late, ".spool", "token")];
        const go = `docker-go-${tool}`;
        const command = `echo waiting; while [ ! -e ${go} ]; do sleep 0.05; done; ${probe(files)}`;
        const paths = await proposeAndAccept(client, client, `docker-${tool}`, command, { tool, runner: "box" });
        await eventually(
          async () =>
            Buffer.from((await client.call("entry/get", { run: `docker-${tool}`, path: paths.stdout, encoding: "base64" })).body, "base64").includes("waiting"),
          60_000,
          "the command to wait",
        );
        later.push(
          await spawnServe(["--home", join(late, ".spool"), "--port", "0", "--no-local-runner"], {
            HOME: late,
            XDG_STATE_HOME: join(late, "state"),
            SPOOL_REGISTRY: "",
          }),
        );
        const tokens = [join(other, ".spool", "token"), join(late, ".spool", "token")].map((file) => readFileSync(file, "utf8").trim());
        writeFileSync(join(root, go), "");
        const done = await finished(client, `docker-${tool}`, paths, 60_000);
        const out = done.out.toString();
        const { seen, mountinfo } = split(out);
        expect(seen.startsWith("waiting\n"), out).toBe(true);
        for (const word of [...words(), ...tokens]) expect(out).not.toContain(word);
        expect(seen).not.toContain("read ");
        for (const path of [`${home}/.`, spoolHome, join(outside, "keys"), other, late]) expect(mountinfo).not.toContain(path);
        // The container's own mount table (the project is there), and the Docker runner ran it in the mode shown.
        expect(mountinfo).toContain(root);
        expect(done.log.attributes).toMatchObject({ sandbox: mode, runner: "box" });
      }, 120_000);
    }
  });
});

describeWithBwrap("the paths the configuration adds: shown, then bound as shown; one holding the server's state is refused", () => {
  let outside: string;
  let ts: TestServer;
  let client: SpoolClient;
  beforeAll(async () => {
    outside = realpathSync(mkdtempSync("/var/tmp/spool-view-config-"));
    for (const dir of ["shared", "cache", "web-only", "project", "web"]) mkdirSync(join(outside, dir));
    writeFileSync(join(outside, "shared", "settings"), "shared-settings\n");
    writeFileSync(join(outside, "web-only", "fixtures"), "web-fixtures\n");
    ts = await startTestServer({
      sandboxView: {
        read: [join(outside, "shared")],
        write: [join(outside, "cache")],
        projects: { web: { read: [join(outside, "web-only")] } },
      },
    });
    client = await ts.client();
    await client.initialize("conf", { root: join(outside, "project") });
  });
  afterAll(async () => {
    client?.close();
    await ts?.stop();
    rmSync(outside, { recursive: true, force: true });
  });

  it("workspace-write: every project's paths, one read-only and one writable, as the facts said", async () => {
    const command = `cat ${outside}/shared/settings; { echo x > ${outside}/shared/new; } 2>/dev/null || echo read-only; echo kept > ${outside}/cache/file; ls ${outside}/web-only 2>/dev/null | wc -l`;
    const done = await runTool(client, "conf", "sh", command);
    expect(factValue(proposalFacts(done.log.attributes), "sandbox")).toContain(`added: ${outside}/shared read-only, ${outside}/cache writable; nothing else`);
    expect(done.out).toBe("shared-settings\nread-only\n0\n");
    expect(readFileSync(join(outside, "cache", "file"), "utf8")).toBe("kept\n");
  });

  it("a project's own entry replaces both lists", async () => {
    const other = await ts.client();
    await other.initialize("web", { root: join(outside, "web") });
    const done = await runTool(other, "web", "sh", `cat ${outside}/web-only/fixtures; ls ${outside}/shared ${outside}/cache 2>/dev/null | wc -l`);
    expect(factValue(proposalFacts(done.log.attributes), "sandbox")).toContain(`added: ${outside}/web-only read-only; nothing else`);
    expect(done.out).toBe("web-fixtures\n0\n");
    other.close();
  });

  it("a configured path holding the server's home is VIEW_HOLDS_SECRET when proposed; nothing is stored", async () => {
    const parent = tempDir("spool-view-leak-");
    const leaky = await startTestServer({ home: join(parent, "home"), sandboxView: { read: [parent], write: [], projects: {} } });
    try {
      const c = await leaky.clientIn("leak");
      await c.call("run/create", { alias: "leak" });
      const refused = await c.call("proposal/create", { run: "leak", tool: "sh", command: "cat token" }).catch((error: unknown) => error);
      expect(refused).toMatchObject({ code: -32032, data: { code: "VIEW_HOLDS_SECRET", path: parent } });
      expect((refused as Error).message).toContain(`sandboxView names ${parent}, which holds the server's own`);
      expect((await c.call("entry/list", { run: "leak" })).entries).toEqual([]);
      c.close();
    } finally {
      await leaky.stop();
    }
  });
});

// The SSH host is this machine (scripts/test-infra.sh), with its bubblewrap; the login is another user of it.
describeWithBwrap("a project rooted at the runner's home: its private home would be the project, so read-only is refused too", () => {
  let home: string;
  let backend: LocalBackend;
  beforeAll(() => {
    // A Spool home kept elsewhere (SPOOL_HOME=/var/lib/spool, as the systemd unit has it): no known secret in this home.
    home = realpathSync(mkdtempSync("/var/tmp/spool-view-home-"));
    writeFileSync(join(home, ".claude.json"), '{"mcpServers":{"x":{"headers":{"Authorization":"Bearer home-root-73"}}}}', { mode: 0o600 });
    writeFileSync(join(home, ".pgpass"), "db:5432:*:app:home-root-pgpass-73\n", { mode: 0o600 });
    backend = new LocalBackend({ environ: { ...process.env, HOME: home }, killGraceMs: 500 });
  });
  afterAll(async () => {
    await backend.close();
    rmSync(home, { recursive: true, force: true });
  });

  for (const [mode] of MODES) {
    it(`${mode}: the home's files are not read; the command is refused, naming the home`, async () => {
      const { out, ran } = await refusal(backend, viewSpec("cat .claude.json .pgpass", home, mode));
      expect(out).not.toContain("home-root-73");
      expect(out).not.toContain("home-root-pgpass-73");
      expect(ran).toContain(`it is or holds the runner user's home directory ${home}`);
    });
  }
});
