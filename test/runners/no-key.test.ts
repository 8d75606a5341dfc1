import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/core/status.js";
import { recordedStatePaths, recordStatePaths } from "../../src/home/registry.js";
import { factValue, proposalFacts } from "../../src/protocol/proposal-facts.js";
import type { ExecSpec } from "../../src/runners/backend.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { expandHome, loginHomes, spoolCode } from "../../src/runners/sandbox/view.js";
import { describeWithInfra } from "../helpers/infra.js";
import { freshDatabase } from "../helpers/postgres.js";
import { type RunnerProcess, spawnRunner } from "../helpers/process.js";
import { runTool } from "../helpers/runners.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * Issue 54, point 1 and 2: a sandboxed command holds no Spool credential of this machine, not only its own server's.
 * Two servers on one machine (A runs the command, B is another home outside /tmp, where every sandbox has its own):
 * B's token is not readable and B's socket cannot be reached; an attached runner's --token-file is not readable from
 * the embedded runner's sandbox; nothing of the runner user's home is (its credential paths, ~/.ssh, included): the
 * sandbox shows only what a command needs (core/sandbox/view.ts). Real servers, a real `spool runner`, real bubblewrap.
 */

/*
 * This file records homes outside /tmp (B's, and a directory it removes again) and removes them at its end. Every
 * sandbox checks the registry (a recorded home in a command's view refuses it), so the file keeps a registry of its
 * own: its servers, runners and sandboxes read and write that one, and the run's others never see its homes.
 */
let sharedRegistry: string | undefined;
beforeAll(() => {
  sharedRegistry = process.env.SPOOL_REGISTRY;
  process.env.SPOOL_REGISTRY = join(tempDir("spool-nokey-registry-"), "registry");
});
afterAll(() => {
  if (sharedRegistry === undefined) delete process.env.SPOOL_REGISTRY;
  else process.env.SPOOL_REGISTRY = sharedRegistry;
});

/** Node inside the sandbox: connects to a Unix socket and says what happened. */
const connectTo = (socket: string) =>
  `${process.execPath} -e 'require("net").connect(${JSON.stringify(socket)}).on("connect", () => { console.log("socket connected"); process.exit(0) }).on("error", (e) => { console.log("socket " + e.code); process.exit(0) })'`;

describeWithBwrap("a sandboxed command reaches no other Spool's credentials or sockets (issue 54)", () => {
  let a: TestServer;
  let b: TestServer;
  let client: SpoolClient;
  let outside: string;
  const runners: RunnerProcess[] = [];
  beforeAll(async () => {
    outside = realpathSync(mkdtempSync("/var/tmp/spool-nokey-"));
    a = await startTestServer({});
    b = await startTestServer({ home: join(outside, "hb"), localRunner: false });
    client = await a.clientIn("nokey");
  });
  afterAll(async () => {
    for (const r of runners) await r.stop("SIGKILL");
    await a?.stop();
    await b?.stop();
    rmSync(outside, { recursive: true, force: true });
  });

  it("B's home, token and socket are recorded when B starts (the registry every sandbox reads)", () => {
    const recorded = recordedStatePaths();
    expect(recorded).toEqual(expect.arrayContaining([b.home, b.server.config.tokenFile, b.server.config.socketPath]));
  });

  for (const tool of ["sh", "env"] as const) {
    it(`${tool === "sh" ? "workspace-write" : "read-only"} on A: B's token is not readable, B's socket not reachable`, async () => {
      const token = b.server.config.tokenFile;
      expect(readFileSync(token, "utf8").trim()).toBe(b.server.token);
      const done = await runTool(
        client,
        `b-${tool}`,
        tool,
        `cat ${token} 2>/dev/null; echo "token=$?"; ls ${b.home} | wc -l; ${connectTo(b.server.config.socketPath)}`,
      );
      expect(done.log.attributes).toMatchObject({ sandbox: tool === "sh" ? "workspace-write" : "read-only" });
      // What it sees is a fact every client shows with the mode, before the decision: no home but a private one.
      expect(factValue(proposalFacts(done.log.attributes), "sandbox")).toMatch(
        /sees the system \(\/usr, .*\) read-only, the project, a private \/tmp and home .*; nothing else\)$/,
      );
      expect(done.out).not.toContain(b.server.token);
      const lines = done.out.trim().split("\n");
      expect(lines[0]).toMatch(/^token=[1-9]/);
      expect(lines[1]).toBe("0");
      expect(lines[2]).toMatch(/^socket (ENOENT|ECONNREFUSED|EPERM|EACCES)$/);
    });
  }

  it("an attached runner's --token-file is not readable from the embedded runner's sandbox", async () => {
    const dir = join(outside, "runner");
    mkdirSync(dir, { mode: 0o700 });
    const tokenFile = join(dir, "runner-token");
    copyFileSync(a.server.config.tokenFile, tokenFile);
    const state = join(outside, "runner-state");
    const args = ["--server", a.server.url, "--token-file", tokenFile, "--project", "nokey", "--name", "attached", "--state-dir", state, "--backend", "local"];
    runners.push(await spawnRunner(args, { SPOOL_HOME: join(outside, "runner-home") }));
    const done = await runTool(client, "runner-token", "sh", `cat ${tokenFile} 2>/dev/null; echo "token=$?"; ls ${state} 2>/dev/null | wc -l`);
    expect(done.out).not.toContain(a.server.token);
    expect(done.out).toMatch(/^token=[1-9]\d*\n0\n$/);
  });
});

/**
 * What the spool CLI needs to run in a sandbox: this checkout (bin/, dist/ or src/ run through tsx) and its
 * node_modules where they really are, which are not in a command's view unless the configuration adds them
 * (`sandboxView.read`): as someone running Spool from a checkout would add them.
 */
function cliView(): { read: string[]; write: string[]; projects: Record<string, never> } {
  const repo = realpathSync(process.cwd());
  return { read: [repo, realpathSync(join(repo, "node_modules"))], write: [], projects: {} };
}

/**
 * The same with the documented PostgreSQL pair: two servers on one database, each with a home of its own on this
 * machine. What a command on A could take from B is worth every project of both (the database is one): B's token
 * is not readable, B's socket not reachable, and the spool CLI run inside against B gets nothing done.
 */
describeWithBwrap("two homes on one machine, the PostgreSQL pair (issue 54)", () => {
  describeWithInfra("postgres", "a sandboxed command on A holds none of B's keys", () => {
    let db: Awaited<ReturnType<typeof freshDatabase>>;
    let a: TestServer;
    let b: TestServer;
    let client: SpoolClient;
    let onB: SpoolClient;
    let outside: string;
    beforeAll(async () => {
      db = await freshDatabase();
      outside = realpathSync(mkdtempSync("/var/tmp/spool-nokey-pg-"));
      a = await startTestServer({ database: db.url, sandboxView: cliView() });
      b = await startTestServer({ home: join(outside, "hb"), database: db.url, localRunner: false });
      client = await a.clientIn("nokey-pg");
      // One project on the one database, reached through B as well.
      onB = await b.client();
      await onB.initialize("nokey-pg", { root: a.root });
    }, 60_000);
    afterAll(async () => {
      await a?.stop();
      await b?.stop();
      await db?.drop();
      rmSync(outside, { recursive: true, force: true });
    });

    for (const tool of ["sh", "env"] as const) {
      it(`${tool === "sh" ? "workspace-write" : "read-only"} on A: B's token is not readable, B's socket not reachable`, async () => {
        expect(recordedStatePaths()).toEqual(expect.arrayContaining([b.home, b.server.config.tokenFile, b.server.config.socketPath]));
        const token = b.server.config.tokenFile;
        const done = await runTool(
          client,
          `pg-${tool}`,
          tool,
          `cat ${token} 2>/dev/null; echo "token=$?"; ls ${b.home} | wc -l; ${connectTo(b.server.config.socketPath)}`,
        );
        expect(done.out).not.toContain(b.server.token);
        const lines = done.out.trim().split("\n");
        expect(lines[0]).toMatch(/^token=[1-9]/);
        expect(lines[1]).toBe("0");
        expect(lines[2]).toMatch(/^socket (ENOENT|ECONNREFUSED|EPERM|EACCES)$/);
      });
    }

    it("workspace-write on A: `spool token create --role admin` and `spool reject` against B fail; nothing changed", async () => {
      await onB.call("run/create", { alias: "pending-on-b" });
      const pending = await onB.call("proposal/create", { run: "pending-on-b", tool: "sh", command: "echo decided-from-inside" });
      const spool = `${process.execPath} ${join(realpathSync(process.cwd()), "bin", "spool.js")}`;
      const asB = `SPOOL_HOME=${b.home} SPOOL_PROJECT=nokey-pg`;
      const done = await runTool(
        client,
        "pg-cli",
        "sh",
        [
          `${spool} --version >/dev/null 2>&1 && echo "cli ran" || echo "cli broken"`,
          `${asB} ${spool} token create stolen --role admin >/dev/null 2>&1; echo "token-create $?"`,
          `${asB} SPOOL_TOKEN_FILE=${b.server.config.tokenFile} ${spool} token create stolen-tcp --role admin --server ${b.server.url} >/dev/null 2>&1; echo "token-create-tcp $?"`,
          `${asB} ${spool} reject pending-on-b 1 --reason inside >/dev/null 2>&1; echo "reject $?"`,
        ].join("; "),
        { timeout_ms: 120_000 },
      );
      const facts = Object.fromEntries(
        done.out
          .trim()
          .split("\n")
          .map((l) => [l.slice(0, l.lastIndexOf(" ")), l.slice(l.lastIndexOf(" ") + 1)]),
      );
      // The CLI itself runs in the sandbox: what fails is reaching B with a credential.
      expect(facts.cli).toBe("ran");
      for (const step of ["token-create", "token-create-tcp", "reject"]) expect(Number(facts[step]), step).toBeGreaterThan(0);
      const names = (await onB.call("token/list", {})).principals.map((p: { name: string }) => p.name);
      expect(names).not.toContain("stolen");
      expect(names).not.toContain("stolen-tcp");
      expect((await onB.call("entry/get", { run: "pending-on-b", path: pending.path })).status).toBe(ENTRY.proposed);
      // The same CLI in no sandbox (full) does reach B (so the test can fail).
      const bare = await runTool(client, "pg-cli-full", "sh", `${asB} ${spool} token create control --role viewer >/dev/null 2>&1; echo "token-create $?"`, {
        sandbox: "full",
        timeout_ms: 120_000,
      });
      expect(bare.out).toBe("token-create 0\n");
      expect((await onB.call("token/list", {})).principals.map((p: { name: string }) => p.name)).toContain("control");
    }, 180_000);
  });
});

/** What a started command wrote on stdout, once it has ended (its stderr read and dropped). */
async function stdoutOf(execution: Awaited<ReturnType<LocalBackend["start"]>>): Promise<string> {
  let out = "";
  execution.stdout.on("data", (data: Buffer) => {
    out += data.toString();
  });
  execution.stderr.resume();
  await execution.result;
  return out;
}

describeWithBwrap("nothing of the runner user's home is in view, its credential paths included", () => {
  let home: string;
  let workspace: string;
  let backend: LocalBackend;
  beforeAll(() => {
    home = realpathSync(mkdtempSync("/var/tmp/spool-nokey-home-"));
    workspace = join(home, "project");
    mkdirSync(join(home, ".ssh"), { mode: 0o700 });
    mkdirSync(workspace);
    writeFileSync(join(home, ".ssh", "id_ed25519"), "PRIVATE KEY\n", { mode: 0o600 });
    writeFileSync(join(home, ".netrc"), "machine example.com password hunter2\n", { mode: 0o600 });
    writeFileSync(join(home, ".profile"), "# visible before\n");
    backend = new LocalBackend({ environ: { ...process.env, HOME: home } });
  });
  afterAll(async () => {
    await backend.close();
    rmSync(home, { recursive: true, force: true });
  });

  async function run(command: string, mode: "read-only" | "workspace-write" | "full") {
    const sandbox = mode === "full" ? {} : { sandbox: { mode, network: false } };
    const spec: ExecSpec = { command, cwd: workspace, workspace, env: {}, ...sandbox, signal: new AbortController().signal };
    return stdoutOf(await backend.start(spec));
  }

  for (const mode of ["read-only", "workspace-write"] as const) {
    it(`${mode}: ~/.ssh, ~/.netrc and the rest of the home are not there; the home is a private one holding the project`, async () => {
      const out = await run(`cat ${home}/.ssh/id_ed25519 ${home}/.netrc ${home}/.profile 2>/dev/null; ls -A ${home}`, mode);
      expect(out).not.toContain("PRIVATE KEY");
      expect(out).not.toContain("hunter2");
      expect(out).toBe("project\n");
    });
  }

  it("a project root that is, or holds, the home of another user who logs in is refused in both modes; one below it runs, seeing the project alone", async () => {
    const others = realpathSync(mkdtempSync("/var/tmp/spool-nokey-users-"));
    const alice = join(others, "alice");
    mkdirSync(join(alice, ".ssh"), { recursive: true, mode: 0o700 });
    mkdirSync(join(alice, "work"));
    writeFileSync(join(alice, ".ssh", "id_ed25519"), "ALICE KEY\n", { mode: 0o600 });
    const passwd = join(others, "passwd");
    writeFileSync(passwd, `alice:x:1001:1001::${alice}:/bin/bash\nsvc:x:999:999::${others}:/usr/sbin/nologin\n`);
    const users = new LocalBackend({ environ: { ...process.env, HOME: home }, passwd });
    try {
      const start = (root: string, mode: "read-only" | "workspace-write") =>
        users.start({
          command: "cat .ssh/id_ed25519; ls -A; echo started",
          cwd: root,
          workspace: root,
          env: {},
          sandbox: { mode, network: false },
          signal: new AbortController().signal,
        });
      for (const mode of ["read-only", "workspace-write"] as const) {
        for (const root of [alice, others]) {
          const refused = await start(root, mode).catch((error: unknown) => error);
          expect((refused as Error).message).toContain(`it is or holds the home directory of a user who logs in here, ${alice}`);
        }
        const out = await stdoutOf(await start(join(alice, "work"), mode));
        // It ran (in the empty work directory), and read nothing of the home above it.
        expect(out).toBe("started\n");
      }
      // The service account (no login shell) is no one's home: its directory is no refusal of its own.
      expect(loginHomes(passwd)).toEqual(expect.arrayContaining([alice]));
      expect(loginHomes(passwd)).not.toContain(others);
    } finally {
      await users.close();
      rmSync(others, { recursive: true, force: true });
    }
  });

  it("a project that holds Spool's own code (its package, the node_modules it loads from, node): workspace-write is refused before anything runs; read-only runs", async () => {
    const project = realpathSync(mkdtempSync("/var/tmp/spool-nokey-code-"));
    const installed = join(project, "node_modules");
    mkdirSync(join(installed, "spool"), { recursive: true });
    const local = new LocalBackend({ environ: { ...process.env, HOME: home }, spoolCode: [join(installed, "spool"), installed] });
    try {
      const start = (mode: "read-only" | "workspace-write") =>
        local.start({
          command: "echo ran > ran; echo ran",
          cwd: project,
          workspace: project,
          env: {},
          sandbox: { mode, network: false },
          signal: new AbortController().signal,
        });
      const refused = await start("workspace-write").catch((error: unknown) => error);
      expect((refused as Error).message).toMatch(
        new RegExp(`the command could write ${installed}/spool \\(in ${project}\\), which holds code Spool runs outside every sandbox`),
      );
      expect(existsSync(join(project, "ran"))).toBe(false);
      expect(await stdoutOf(await start("read-only"))).toBe("ran\n");
    } finally {
      await local.close();
      rmSync(project, { recursive: true, force: true });
    }
    // This installation's own: the checkout the suite runs from, the node_modules it loads from (where a link leads:
    // a worktree's may be another checkout's), and node.
    const repo = realpathSync(new URL("../..", import.meta.url).pathname);
    expect(spoolCode()).toEqual(expect.arrayContaining([repo, realpathSync(join(repo, "node_modules")), realpathSync(process.execPath)]));
  });

  it("without a sandbox (full) the same command reads them (the test can fail)", async () => {
    const out = await run(`cat ${home}/.ssh/id_ed25519`, "full");
    expect(out).toBe("PRIVATE KEY\n");
  });

  it("~/ is the runner's home; an absolute path is as it is", () => {
    expect(expandHome("~/.gitconfig", "/h1")).toBe("/h1/.gitconfig");
    expect(expandHome("/etc/x", "/h1")).toBe("/etc/x");
  });

  it("a path recorded and then removed with its directory is forgotten", () => {
    const dir = mkdtempSync("/var/tmp/spool-nokey-gone-");
    recordStatePaths([join(dir, "token")]);
    expect(recordedStatePaths()).not.toContain(join(dir, "token"));
    writeFileSync(join(dir, "token"), "x");
    expect(recordedStatePaths()).toContain(join(dir, "token"));
    rmSync(dir, { recursive: true });
    recordedStatePaths();
    recordStatePaths([]);
    expect(recordedStatePaths()).not.toContain(join(dir, "token"));
  });
});
