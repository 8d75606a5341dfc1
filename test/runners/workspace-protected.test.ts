import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import { ENTRY } from "../../src/protocol/status.js";
import { RunnerClient } from "../../src/runners/client/runner-client.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { runTool } from "../helpers/runners.js";
import { attempts, describeWithBwrap, GIT_WRITES } from "../helpers/sandbox.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/*
 * What programs outside the sandbox run from a project, out of a workspace-write command's reach on the local runner
 * (src/runners/sandbox/workspace.ts WORKSPACE_PROTECTED): a login's files, and every .git of the project. The Docker
 * and SSH cases are in sandbox-modes.test.ts, beside their runners.
 */

// Issue 23 review, finding 1: sshd and the login shell run ~/.ssh/rc, ~/.profile, ~/.bashrc outside any sandbox.
describeWithBwrap("workspace-write never writes what a login runs", () => {
  let ts: TestServer;
  let client: SpoolClient;
  let base: string;
  const runners: RunnerClient[] = [];
  /** A local runner whose user's home ($HOME) is `home`, the default of `project` (rooted at `root`). */
  const runnerWithHome = async (project: string, root: string, home: string) => {
    const c = await ts.client();
    await c.initialize(project, { root });
    const runner = new RunnerClient({
      connect: () => SpoolClient.connect(ts.server.url, { token: ts.server.token }),
      project,
      name: `home-${project}`,
      backend: new LocalBackend({ environ: { ...process.env, HOME: home } }),
      default: true,
      log: createLogger("silent"),
    });
    runners.push(runner);
    await runner.start();
    return c;
  };
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    base = realpathSync(tempDir("spool-ww-home-"));
  });
  afterAll(async () => {
    for (const r of runners) await r.stop();
    client?.close();
    await ts.stop();
    rmSync(base, { recursive: true, force: true });
  });

  const attack = 'echo "echo pwned" >> .bashrc; mkdir -p .ssh; echo "touch /tmp/pwned" > .ssh/rc; echo x > made';

  for (const [what, rootOf] of [
    ["the project root is the runner user's home", (home: string) => home],
    ["the project root holds the runner user's home", (home: string) => join(home, "..")],
  ] as const) {
    it(`${what}: workspace-write is refused with the reason (naming --root), nothing runs`, async () => {
      const home = join(base, what.includes("holds") ? "holder/user" : "user");
      mkdirSync(home, { recursive: true });
      writeFileSync(join(home, ".bashrc"), "# login\n");
      const project = what.includes("holds") ? "ww-home-above" : "ww-home";
      client = await runnerWithHome(project, rootOf(home), home);
      const done = await runTool(client, "home", "sh", attack);
      expect(done.log.attributes).toMatchObject({ sandbox: "workspace-write" });
      expect(done.stdout.status).toBe(ENTRY.cancelled);
      expect(JSON.stringify(done.log)).toMatch(/runner user's home directory .*--root DIR/);
      expect(readFileSync(join(home, ".bashrc"), "utf8")).toBe("# login\n");
      expect(existsSync(join(home, ".ssh"))).toBe(false);
      expect(existsSync(join(home, "made"))).toBe(false);
      client.close();
    });
  }

  it("in a project that has them, the dotfiles and directories a login runs, and git's directory, are read-only; the rest is writable", async () => {
    const root = join(base, "project");
    const home = join(base, "elsewhere");
    mkdirSync(join(root, ".git", "hooks"), { recursive: true });
    writeFileSync(join(root, ".git", "config"), "[core]\n");
    mkdirSync(join(root, ".ssh"), { recursive: true });
    mkdirSync(join(root, ".config", "systemd"), { recursive: true });
    mkdirSync(home, { recursive: true });
    writeFileSync(join(root, ".bashrc"), "# login\n");
    writeFileSync(join(root, ".profile"), "# login\n");
    client = await runnerWithHome("ww-dotfiles", root, home);
    const tries: [string, string][] = [
      ["bashrc", 'echo "echo pwned" >> .bashrc'],
      ["profile", "echo x > .profile"],
      ["ssh-rc", "echo x > .ssh/rc"],
      ["systemd", "echo x > .config/systemd/a.service"],
      ...GIT_WRITES,
      ["made", "echo x > made"],
    ];
    const command = attempts(tries);
    const done = await runTool(client, "dotfiles", "sh", command);
    expect(done.log.attributes).toMatchObject({ sandbox: "workspace-write" });
    expect(done.out).toBe(
      "bashrc=refused\nprofile=refused\nssh-rc=refused\nsystemd=refused\ngit-config=refused\ngit-hook=refused\ngit-moved=refused\nmade=written\n",
    );
    expect(readFileSync(join(root, ".bashrc"), "utf8")).toBe("# login\n");
    expect(readFileSync(join(root, ".git", "config"), "utf8")).toBe("[core]\n");
    expect(existsSync(join(root, ".git", "hooks", "post-checkout"))).toBe(false);
    expect(existsSync(join(root, ".ssh", "rc"))).toBe(false);
    // It made no repository: nothing to say at its end.
    expect(done.err).not.toContain("spool:");
    client.close();
  });

  it("a submodule's .git file and a checkout inside the project are read-only too; a .git that is a link is refused before anything runs", async () => {
    const root = join(base, "nested");
    const home = join(base, "elsewhere-nested");
    mkdirSync(join(root, ".git", "modules", "sub"), { recursive: true });
    writeFileSync(join(root, ".git", "modules", "sub", "config"), "[core]\n");
    mkdirSync(join(root, "sub"), { recursive: true });
    writeFileSync(join(root, "sub", ".git"), "gitdir: ../.git/modules/sub\n");
    mkdirSync(join(root, "vendor", "lib", ".git"), { recursive: true });
    writeFileSync(join(root, "vendor", "lib", ".git", "config"), "[core]\n");
    mkdirSync(home, { recursive: true });
    client = await runnerWithHome("ww-nested", root, home);
    const done = await runTool(
      client,
      "nested",
      "sh",
      attempts([
        // The submodule pointed at a git directory the command made (the root's git status runs git in it).
        ["submodule", "mkdir .planted && echo 'gitdir: ../.planted' > sub/.git"],
        ["checkout", "printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' >> vendor/lib/.git/config"],
        ["source", "echo x > vendor/lib/made"],
      ]),
    );
    expect(done.out).toBe("submodule=refused\ncheckout=refused\nsource=written\n");
    expect(readFileSync(join(root, "sub", ".git"), "utf8")).toBe("gitdir: ../.git/modules/sub\n");
    expect(readFileSync(join(root, "vendor", "lib", ".git", "config"), "utf8")).toBe("[core]\n");
    client.close();

    const linked = join(base, "linked");
    mkdirSync(join(base, "linked-git"), { recursive: true });
    mkdirSync(linked, { recursive: true });
    symlinkSync(join(base, "linked-git"), join(linked, ".git"));
    client = await runnerWithHome("ww-linked", linked, home);
    const refused = await runTool(client, "linked", "sh", "echo x > made");
    expect(refused.stdout.status).toBe(ENTRY.cancelled);
    expect(JSON.stringify(refused.log)).toContain(`${join(linked, ".git")} is a symbolic link`);
    expect(existsSync(join(linked, "made"))).toBe(false);
    client.close();
  });

  it("a repository the command makes (git init, one deep down, a bare one by hand) is renamed once it has ended, and its stderr says so; a bare one already there is read-only", async () => {
    const root = join(base, "made-repos");
    const home = join(base, "elsewhere-made");
    mkdirSync(join(root, "old.git", "objects"), { recursive: true });
    mkdirSync(join(root, "old.git", "refs"), { recursive: true });
    writeFileSync(join(root, "old.git", "HEAD"), "ref: refs/heads/main\n");
    writeFileSync(join(root, "old.git", "config"), "[core]\n\tbare = true\n");
    mkdirSync(home, { recursive: true });
    client = await runnerWithHome("ww-made", root, home);
    const planted = "printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n\\tpager = touch /tmp/pwned\\n'";
    const done = await runTool(
      client,
      "made",
      "sh",
      attempts([
        ["bare-config", `${planted} >> old.git/config`],
        ["init", `git init -q . && ${planted} >> .git/config`],
        // Past the depth the start's search reaches (GIT_SEARCH): the look at the end reads the whole project.
        ["deep", "mkdir -p a/b/c/d/e/f/g && git init -q a/b/c/d/e/f/g"],
        ["bare", `mkdir -p evil/objects evil/refs && echo 'ref: refs/heads/main' > evil/HEAD && ${planted} > evil/config`],
      ]),
    );
    expect(done.out).toBe("bare-config=refused\ninit=written\ndeep=written\nbare=written\n");
    expect(readFileSync(join(root, "old.git", "config"), "utf8")).toBe("[core]\n\tbare = true\n");
    expect(existsSync(join(root, ".git"))).toBe(false);
    expect(readFileSync(join(root, ".git.spool-untrusted", "config"), "utf8")).toContain("fsmonitor = touch /tmp/pwned");
    expect(existsSync(join(root, "a/b/c/d/e/f/g/.git"))).toBe(false);
    expect(existsSync(join(root, "a/b/c/d/e/f/g/.git.spool-untrusted"))).toBe(true);
    expect(existsSync(join(root, "evil", "HEAD"))).toBe(false);
    expect(readFileSync(join(root, "evil", "HEAD.spool-untrusted"), "utf8")).toBe("ref: refs/heads/main\n");
    // git no longer takes any of them for a repository; the bare one that was there still is one.
    const gitDir = (dir: string) =>
      spawnSync("git", ["-C", dir, "rev-parse", "--git-dir"], { env: { ...process.env, GIT_CEILING_DIRECTORIES: base }, encoding: "utf8" });
    for (const dir of [root, join(root, "evil"), join(root, "a/b/c/d/e/f/g")]) expect(gitDir(dir).status, dir).not.toBe(0);
    expect(gitDir(join(root, "old.git")).stdout.trim()).toBe(".");
    for (const [made, entry, renamed] of [
      [".git", ".git", ".git.spool-untrusted"],
      ["a/b/c/d/e/f/g/.git", "a/b/c/d/e/f/g/.git", ".git.spool-untrusted"],
      ["evil", "evil/HEAD", "HEAD.spool-untrusted"],
    ])
      expect(done.err).toContain(
        `spool: the git repository ${made} was made while this command ran; git runs what a repository's config and hooks name wherever the person runs git there, so ${entry} was renamed ${renamed}`,
      );
    client.close();
  });
});
