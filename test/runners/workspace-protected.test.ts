import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
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
/** A repository as git finds one at `dir/.git` (objects, refs, a HEAD), its config `config`. */
function gitRepo(dir: string, config: string): void {
  for (const sub of ["objects", "refs"]) mkdirSync(join(dir, ".git", sub), { recursive: true });
  writeFileSync(join(dir, ".git/HEAD"), "ref: refs/heads/main\n");
  writeFileSync(join(dir, ".git/config"), config);
}

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

    // A root that is itself a git directory (a bare repository): every file of it is git's.
    const bare = join(base, "bare-root");
    for (const dir of ["objects", "refs"]) mkdirSync(join(bare, dir), { recursive: true });
    writeFileSync(join(bare, "HEAD"), "ref: refs/heads/main\n");
    client = await runnerWithHome("ww-bare-root", bare, home);
    const bareRefused = await runTool(client, "bare-root", "sh", "echo x > made");
    expect(bareRefused.stdout.status).toBe(ENTRY.cancelled);
    expect(JSON.stringify(bareRefused.log)).toContain(`the project root ${bare} is itself a git directory`);
    expect(existsSync(join(bare, "made"))).toBe(false);
    client.close();
  });

  it("every git directory and .git file the command could write (git init, deep down, by hand, an old directory and old files made one) is unknown to git once it has ended, and its stderr says so; one already there is read-only", async () => {
    const root = join(base, "made-repos");
    const home = join(base, "elsewhere-made");
    for (const dir of [
      "old.git/objects",
      "old.git/refs",
      "vendor/lib/.git/objects",
      "vendor/lib/.git/refs",
      "nested/.git/refs",
      "old-dir",
      "a/b/c/d/e/f/g",
      "husky/_",
    ])
      mkdirSync(join(root, dir), { recursive: true });
    writeFileSync(join(root, "nested/.git/HEAD"), "ref: refs/heads/main\n");
    // husky's hooks directory, named by a config git reads, ignored by git: read-only as the config is.
    writeFileSync(join(root, "nested/.git/config"), "[core]\n\thooksPath = ../husky/_\n");
    writeFileSync(join(root, "husky/_/pre-commit"), "#!/bin/sh\n");
    writeFileSync(join(root, "old.git", "HEAD"), "ref: refs/heads/main\n");
    writeFileSync(join(root, "old.git", "config"), "[core]\n\tbare = true\n");
    writeFileSync(join(root, "vendor/lib/.git/HEAD"), "ref: refs/heads/main\n");
    writeFileSync(join(root, "old-head"), "ref: refs/heads/main\n");
    writeFileSync(join(root, "old-config"), "[core]\n\tfsmonitor = touch /tmp/pwned\n");
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
        ["deep", "git init -q a/b/c/d/e/f/g"],
        ["bare", `mkdir -p evil/objects evil/refs && echo 'ref: refs/heads/main' > evil/HEAD && ${planted} > evil/config`],
        // Old directory, old files: their birth times say nothing about who made the repository.
        [
          "reused",
          "mkdir -p reused && mv old-dir reused/.git && mv old-head reused/.git/HEAD && mv old-config reused/.git/config && mkdir reused/.git/objects reused/.git/refs",
        ],
        // HEAD a link, objects elsewhere through commondir: git takes it for a repository all the same.
        ["linked", "mkdir -p linked/refs && ln -s refs/heads/main linked/HEAD && echo ../evil > linked/commondir"],
        ["gitfile", "mkdir -p pointer && echo 'gitdir: ../evil' > pointer/.git"],
        // A read-only mount moved away with its parent, and a repository made in its place.
        ["moved", "mv nested nested.moved && mkdir nested && git init -q nested"],
        ["hooks-path", "echo 'touch /tmp/pwned' >> husky/_/pre-commit"],
        ["fifo", "mkdir -p fifo/.git/objects && mkfifo fifo/.git/HEAD"],
      ]),
    );
    expect(done.out).toBe(
      "bare-config=refused\ninit=written\ndeep=written\nbare=written\nreused=written\nlinked=written\ngitfile=written\nmoved=written\nhooks-path=refused\nfifo=written\n",
    );
    expect(readFileSync(join(root, "husky/_/pre-commit"), "utf8")).toBe("#!/bin/sh\n");
    expect(readFileSync(join(root, "old.git", "config"), "utf8")).toBe("[core]\n\tbare = true\n");
    expect(readFileSync(join(root, ".git", "config"), "utf8")).toContain("fsmonitor = touch /tmp/pwned");
    // git no longer takes any of them for a repository; the two that were there still are.
    const gitDir = (dir: string) =>
      spawnSync("git", ["-C", dir, "rev-parse", "--git-dir"], { env: { ...process.env, GIT_CEILING_DIRECTORIES: base }, encoding: "utf8" });
    for (const dir of [".", "a/b/c/d/e/f/g", "evil", "reused", "reused/.git", "linked", "pointer", ".git"])
      expect(gitDir(join(root, dir)).status, dir).not.toBe(0);
    expect(gitDir(join(root, "old.git")).stdout.trim()).toBe(".");
    expect(gitDir(join(root, "vendor/lib")).stdout.trim()).toBe(".git");
    const said = (path: string, what: string, entry: string, renamed: string) =>
      `spool: ${path} is a ${what} this command could write; git runs what a repository's config and hooks name wherever the person runs git there, so ${entry} was renamed ${renamed}`;
    for (const dir of [".git", "a/b/c/d/e/f/g/.git", "evil", "reused/.git", "linked", "nested/.git", "nested.moved/.git", "fifo/.git"]) {
      expect(lstatSync(join(root, dir, "HEAD.spool-untrusted"), { throwIfNoEntry: false }), dir).toBeDefined();
      expect(done.err).toContain(said(dir, "git directory", `${dir}/HEAD`, "HEAD.spool-untrusted"));
    }
    expect(readFileSync(join(root, "pointer", ".git.spool-untrusted"), "utf8")).toBe("gitdir: ../evil\n");
    expect(done.err).toContain(said("pointer/.git", ".git file", "pointer/.git", ".git.spool-untrusted"));
    expect(done.err).not.toContain("old.git");
    expect(done.err).not.toContain("vendor");
    client.close();
  });

  // Third review: what a config names (husky's hooks directory, an included file) was bound only where it was, as it was.
  it("a hooks directory or included config the project's git config names, made where there was none or put in place of the one bound, is renamed once the command has ended; a link on its path makes the repository unknown to git", async () => {
    const root = join(base, "named-paths");
    const home = join(base, "elsewhere-named");
    for (const dir of [
      ".git/objects",
      ".git/refs",
      ".git/worktrees/wt",
      ".husky/_",
      "linked/.git/objects",
      "linked/.git/refs",
      "linked/.husky/_",
      "tools",
      "wt",
    ])
      mkdirSync(join(root, dir), { recursive: true });
    for (const repo of [".git", "linked/.git"]) {
      writeFileSync(join(root, repo, "HEAD"), "ref: refs/heads/main\n");
      // Quoted, with a comment after: as git reads it. Programs named by a path: one there, one not yet.
      writeFileSync(
        join(root, repo, "config"),
        '[core]\n\thooksPath = ".husky/_" ; husky\n\tfsmonitor = tools/fsmon.sh\n[include]\n\tpath = ../local.gitconfig # absent\n[alias]\n\tst = "!hooks-bin/st.sh --short"\n',
      );
    }
    writeFileSync(join(root, ".husky/_/pre-commit"), "#!/bin/sh\n");
    writeFileSync(join(root, "tools/fsmon.sh"), "#!/bin/sh\n");
    // Second review: a hooks path set in an included file; one that is a link; husky's scripts beside its `_`.
    for (const [repo, config] of [
      ["inc", "[include]\n\tpath = ../../inc.gitconfig\n"],
      ["link2", "[core]\n\thooksPath = .githooks\n"],
      ["hk", "[core]\n\thooksPath = .husky/_\n"],
      ["nl", "[core]\n\thooksPath = .husky/_\n"],
      ["gh", ""],
      ["lt", "[core]\n\thooksPath = .githooks\n"],
      ["pc", "[core]\n\thooksPath = tools-pc/hooks\n"],
      // Includes itself, fanning out: read once (git stops at its depth; ten to the fourth reads would hold the start).
      ["fan", `[include]\n${"\tpath = config\n".repeat(4)}`],
    ] as const) {
      gitRepo(join(root, repo), config);
    }
    writeFileSync(join(root, "inc.gitconfig"), "[core]\n\thooksPath = .hooks\n");
    mkdirSync(join(root, "hooks-target"));
    symlinkSync("../hooks-target", join(root, "link2/.githooks"));
    // A FIFO where a config or a commondir would be (a command may leave one): never waited on, or no command would start.
    mkdirSync(join(root, "fifo-cfg/.git"), { recursive: true });
    writeFileSync(join(root, "fifo-cfg/.git/HEAD"), "ref: refs/heads/main\n");
    for (const fifo of ["fifo-cfg/.git/config", "fifo-cfg/.git/commondir"]) expect(spawnSync("mkfifo", [join(root, fifo)]).status).toBe(0);
    mkdirSync(join(root, "hk/.husky/_"), { recursive: true });
    writeFileSync(join(root, "hk/.husky/_/h"), "#!/bin/sh\n");
    // A linked work tree inside the project: git there reads the main config, and runs its hooks from wt/.husky/_.
    writeFileSync(join(root, "wt/.git"), "gitdir: ../.git/worktrees/wt\n");
    writeFileSync(join(root, ".git/worktrees/wt/commondir"), "../..\n");
    writeFileSync(join(root, ".git/worktrees/wt/HEAD"), "ref: refs/heads/main\n");
    mkdirSync(home, { recursive: true });
    // The user's own config: a relative hooks path there is every work tree's.
    // Aliases that name the project's own directories: nothing of them is bound or renamed (a program is a file).
    writeFileSync(join(home, ".gitconfig"), "[core]\n\thooksPath = .ghooks\n[alias]\n\tt = !npm test -- src/\n\tp = !npx prettier --write ./\n");
    // A hooks path that is a link at the start, and one bound whose parent a command may swap for a link.
    mkdirSync(join(root, "lt-hooks/githooks"), { recursive: true });
    symlinkSync("../lt-hooks/githooks", join(root, "lt/.githooks"));
    mkdirSync(join(root, "pc/tools-pc/hooks"), { recursive: true });
    client = await runnerWithHome("ww-named", root, home);
    const planted = "printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n'";
    const done = await runTool(
      client,
      "named",
      "sh",
      attempts([
        ["bound", "echo 'touch /tmp/pwned' >> .husky/_/pre-commit"],
        ["moved", "mv .husky .husky.old && mkdir -p .husky/_ && echo 'touch /tmp/pwned' > .husky/_/pre-commit"],
        ["included", `${planted} > local.gitconfig`],
        // A link where a directory on the path was: the hooks directory is elsewhere, and no rename reaches it there.
        ["link", "mv linked/.husky linked/.husky.old && mkdir -p elsewhere/_ && ln -s ../elsewhere linked/.husky"],
        ["program", "echo 'touch /tmp/pwned' >> tools/fsmon.sh"],
        ["alias", "mkdir -p hooks-bin && echo 'touch /tmp/pwned' > hooks-bin/st.sh"],
        ["worktree", "mkdir -p wt/.husky/_ && echo 'touch /tmp/pwned' > wt/.husky/_/pre-commit"],
        ["away", "mv tools tools.old"],
        ["included-hooks", "mkdir -p inc/.hooks && echo 'touch /tmp/pwned' > inc/.hooks/post-index-change"],
        ["replaced-link", "rm link2/.githooks && mkdir link2/.githooks && echo 'touch /tmp/pwned' > link2/.githooks/post-index-change"],
        ["husky-script", "echo 'touch /tmp/pwned' > hk/.husky/pre-commit"],
        ["global", "mkdir -p gh/.ghooks && echo 'touch /tmp/pwned' > gh/.ghooks/post-index-change"],
        ["scaffold", "mkdir -p src dist && echo x > src/a && echo y > top-file"],
        ["link-target", "mv lt-hooks lt-hooks.old && mkdir -p lt-hooks/githooks && echo 'touch /tmp/pwned' > lt-hooks/githooks/post-index-change"],
        // Where the link leads depends on who follows it: git, run in pc, finds pc/evil-pc/hooks.
        [
          "proc-link",
          "mv pc/tools-pc pc/tools-pc.old && ln -s /proc/self/cwd/evil-pc pc/tools-pc && mkdir -p pc/evil-pc/hooks && echo 'touch /tmp/pwned' > pc/evil-pc/hooks/post-index-change",
        ],
        [
          "moved-repo",
          "mkdir -p node_modules && mv nl node_modules/nl2 && ln -s node_modules/nl2 nl && mkdir -p nl/.husky/_ && echo 'touch /tmp/pwned' > nl/.husky/_/post-index-change",
        ],
      ]),
    );
    expect(done.out).toBe(
      "bound=refused\nmoved=written\nincluded=written\nlink=written\nprogram=refused\nalias=written\nworktree=written\naway=written\nincluded-hooks=written\nreplaced-link=written\nhusky-script=refused\nglobal=written\nscaffold=written\nlink-target=written\nproc-link=written\nmoved-repo=written\n",
    );
    // Moved away whole: nothing is there for git to run, and nothing is said of it.
    expect(done.err).not.toContain("tools/fsmon.sh");
    expect(existsSync(join(root, "inc/.hooks"))).toBe(false);
    expect(done.err).toContain("spool: inc/.hooks, which the config of inc/.git names as its hooks directory, is not what it was");
    expect(existsSync(join(root, "link2/.githooks.spool-untrusted/post-index-change"))).toBe(true);
    expect(done.err).toContain("spool: link2/.githooks, which the config of link2/.git names as its hooks directory, is not what it was");
    expect(existsSync(join(root, "hk/.husky/pre-commit"))).toBe(false);
    expect(readFileSync(join(root, "tools.old/fsmon.sh"), "utf8")).toBe("#!/bin/sh\n");
    expect(existsSync(join(root, "hooks-bin/st.sh"))).toBe(false);
    expect(done.err).toContain(
      "spool: hooks-bin/st.sh, which the config of .git names as its program, is not what it was when this command started (it made, replaced or moved it); git runs it",
    );
    expect(existsSync(join(root, "wt/.husky/_"))).toBe(false);
    expect(done.err).toContain("spool: wt/.husky/_, which the config of .git/worktrees/wt names as its hooks directory, is not what it was");
    expect(existsSync(join(root, ".husky/_"))).toBe(false);
    expect(readFileSync(join(root, ".husky/_.spool-untrusted/pre-commit"), "utf8")).toContain("pwned");
    expect(readFileSync(join(root, ".husky.old/_/pre-commit"), "utf8")).toBe("#!/bin/sh\n");
    expect(existsSync(join(root, "local.gitconfig"))).toBe(false);
    expect(existsSync(join(root, "local.gitconfig.spool-untrusted"))).toBe(true);
    expect(done.err).toContain(
      "spool: .husky/_, which the config of .git names as its hooks directory, is not what it was when this command started (it made, replaced or moved it); git runs the hooks in it wherever the person runs git there, so it was renamed _.spool-untrusted",
    );
    expect(done.err).toContain("spool: local.gitconfig, which the config of .git names as its included config, is not what it was");
    // The project's repository is still one, and git no longer reads what the command planted.
    const git = (dir: string, ...args: string[]) =>
      spawnSync("git", ["-C", join(root, dir), ...args], { env: { ...process.env, GIT_CEILING_DIRECTORIES: base }, encoding: "utf8" });
    expect(git(".", "rev-parse", "--git-dir").stdout.trim()).toBe(".git");
    expect(git(".", "config", "--get-all", "core.fsmonitor").stdout).toBe("tools/fsmon.sh\n");
    // Behind a link the hooks directory could not be renamed: the link is, so git there finds no hooks directory.
    expect(lstatSync(join(root, "linked/.husky.spool-untrusted")).isSymbolicLink()).toBe(true);
    expect(existsSync(join(root, "linked/.husky"))).toBe(false);
    expect(done.err).toContain("spool: linked/.husky/_, which the config of linked/.git names as its hooks directory, is not what it was");
    expect(done.err).toContain("so linked/.husky was renamed .husky.spool-untrusted");
    expect(existsSync(join(root, "gh/.ghooks.spool-untrusted/post-index-change"))).toBe(true);
    expect(done.err).toContain("spool: gh/.ghooks, which the config of gh/.git names as its hooks directory, is not what it was");
    expect(readFileSync(join(root, "src/a"), "utf8")).toBe("x\n");
    expect(done.err).not.toMatch(/spool: (src|dist|top-file|\.)[,/ ]/);
    expect(lstatSync(join(root, "lt/.githooks.spool-untrusted")).isSymbolicLink()).toBe(true);
    expect(done.err).toContain("spool: lt/.githooks, which the config of lt/.git names as its hooks directory, is not what it was");
    expect(lstatSync(join(root, "pc/tools-pc.spool-untrusted")).isSymbolicLink()).toBe(true);
    expect(done.err).toContain("so pc/tools-pc was renamed tools-pc.spool-untrusted");
    // The repository moved into node_modules (which the look does not read) and a link left in its place: the link is renamed.
    expect(lstatSync(join(root, "nl.spool-untrusted")).isSymbolicLink()).toBe(true);
    expect(done.err).toMatch(/spool: nl\/\S+, which the config of nl\/\.git names as its hooks directory, is not what it was/);
    expect(done.err).toContain("so nl was renamed nl.spool-untrusted");
    client.close();
  });
  it("a hooks directory that is the work tree (hooksPath = ., husky's `_` at its top) keeps its hooks by name, and the project stays writable; so does one holding it (a nested repository's ..)", async () => {
    const root = join(base, "hooks-at-top");
    const home = join(base, "elsewhere-top");
    for (const [repo, config] of [
      ["dot", "[core]\n\thooksPath = .\n"],
      ["hr", "[core]\n\thooksPath = _\n"],
      ["up", "[core]\n\thooksPath = ..\n"],
    ] as const) {
      gitRepo(join(root, repo), config);
    }
    writeFileSync(join(root, "dot/post-commit"), "#!/bin/sh\n");
    mkdirSync(join(root, "hr/_"));
    writeFileSync(join(root, "hr/_/h"), "#!/bin/sh\n");
    mkdirSync(home, { recursive: true });
    client = await runnerWithHome("ww-top", root, home);
    const done = await runTool(
      client,
      "top",
      "sh",
      attempts([
        ["dot-file", "echo x > dot/notes.txt"],
        ["dot-hook", "echo 'touch /tmp/pwned' >> dot/post-commit"],
        ["dot-new-hook", "echo 'touch /tmp/pwned' > dot/pre-commit"],
        ["husky-top", "echo 'touch /tmp/pwned' > hr/post-checkout"],
        ["up-file", "echo y > up/notes.txt"],
        // Its `..` is the project's top: git in up runs the hooks there.
        ["up-hook", "echo 'touch /tmp/pwned' > post-merge"],
      ]),
    );
    expect(done.out).toBe("dot-file=written\ndot-hook=refused\ndot-new-hook=written\nhusky-top=written\nup-file=written\nup-hook=written\n");
    expect(readFileSync(join(root, "dot/notes.txt"), "utf8")).toBe("x\n");
    expect(readFileSync(join(root, "up/notes.txt"), "utf8")).toBe("y\n");
    expect(existsSync(join(root, "dot/pre-commit"))).toBe(false);
    expect(existsSync(join(root, "dot/pre-commit.spool-untrusted"))).toBe(true);
    expect(done.err).toContain("spool: dot/pre-commit, which the config of dot/.git names as its hook, is not what it was");
    expect(existsSync(join(root, "hr/post-checkout"))).toBe(false);
    expect(done.err).toContain("spool: hr/post-checkout, which the config of hr/.git names as its hook, is not what it was");
    expect(existsSync(join(root, "post-merge"))).toBe(false);
    expect(done.err).toContain("spool: post-merge, which the config of up/.git names as its hook, is not what it was");
    expect(done.err).not.toMatch(/spool: (dot|up|hr)\/notes/);
    client.close();
  });
});
