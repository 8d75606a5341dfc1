// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { createLogger } from "../../src/logger.js";
import { ENTRY } from "../../src/protocol/status.js";
import { createMemoryTransportPair } from "../../src/rpc/transport.js";
import { StartError } from "../../src/runners/backend.js";
import { RunnerClient } from "../../src/runners/client/runner-client.js";
import { TTY_TERM } from "../../src/runners/control.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { type RemoteShell, SshBackend, ssh2Shell } from "../../src/runners/ssh/ssh.js";
import { describeWithInfra, infra, sshHostKeys, sshKey } from "../helpers/infra.js";
import { type ServeProcess, spawnServe } from "../helpers/process.js";
import { finished, runTool } from "../helpers/runners.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * Attacks on the sandbox, each as found (issue 23, items 3-5), over real
 * bubblewrap and real processes: a proposal that tries to pick the sandbox's
 * launcher or load code into it, a sandboxed command that looks for the
 * server's token, database and /tmp, and an ordinary sh command that reads
 * the server's environment through /proc.
 */

describeWithBwrap("a proposal cannot choose what starts the sandbox", () => {
  let ts: TestServer;
  let root: string;
  let client: SpoolClient;
  beforeAll(async () => {
    ts = await startTestServer();
    root = realpathSync(tempDir("spool-attack-root-"));
    client = await ts.client();
    await client.initialize("attack-launcher", { root });
  });
  afterAll(async () => {
    await ts.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("a fake bwrap first in the proposal's PATH is never run: the runner's own bwrap is, and the PATH applies inside the sandbox", async () => {
    mkdirSync(join(root, "fakebin"));
    const fake = join(root, "fakebin", "bwrap");
    writeFileSync(fake, `#!/bin/sh\necho FAKE-BWRAP\ntouch ${join(root, "pwned")}\ncat ${ts.server.config.tokenFile}\n`);
    chmodSync(fake, 0o755);
    const path = `${root}/fakebin:/usr/bin:/bin`;
    for (const tool of ["env", "sh"] as const) {
      const done = await runTool(client, `fake-${tool}`, tool, 'echo "PATH=$PATH"; touch inside-probe; echo "touch=$?"', { env: { PATH: path } });
      expect(done.out).not.toContain("FAKE-BWRAP");
      expect(done.out + done.err).not.toContain(ts.server.token);
      expect(done.out).toBe(`PATH=${path}\ntouch=${tool === "env" ? 1 : 0}\n`);
      expect(existsSync(join(root, "pwned"))).toBe(false);
      expect(done.log.attributes).toMatchObject({ sandbox: tool === "env" ? "read-only" : "workspace-write" });
    }
    expect(existsSync(join(root, "inside-probe"))).toBe(true); // the sh one, in workspace-write
  });

  // Issue 23 review, finding 2: the cwd was judged at proposal time only.
  for (const [target, where] of [
    ["the server's home", () => ts.server.config.home],
    ["a directory outside the project", () => realpathSync(tempDir("spool-attack-elsewhere-"))],
  ] as const) {
    // full too (issue 37): no sandbox, yet the directory is judged at the start as it is for the sandboxed modes.
    for (const mode of ["sh", "env", "full"] as const) {
      it(`${mode}: a cwd swapped for a link to ${target} after the proposal is refused at the start (499 with the reason), nothing runs`, async () => {
        const tool = mode === "full" ? "sh" : mode;
        const dir = realpathSync(where());
        const sub = `moved-${mode}-${target.length}`;
        mkdirSync(join(root, sub));
        const run = `moved-${mode}-${target.length}`;
        await client.call("run/create", { alias: run });
        const { path } = await client.call("proposal/create", {
          run,
          tool,
          command: "touch moved-probe; ls",
          cwd: sub,
          ...(mode === "full" ? { sandbox: "full" as const } : {}),
        });
        rmSync(join(root, sub), { recursive: true });
        symlinkSync(dir, join(root, sub));
        const resolved = await client.call("run/resolve", { run, path, decision: "accept" });
        const [stdout, stderr] = resolved.channels.map((c: any) => c.path) as [string, string];
        const done = await finished(client, run, { path, stdout, stderr });
        expect(done.stdout.status).toBe(ENTRY.cancelled);
        expect(JSON.stringify(done.log)).toMatch(/outside the project root/);
        expect(done.out.toString()).toBe("");
        expect(existsSync(join(dir, "moved-probe"))).toBe(false);
      });
    }
  }

  // Issue 23 review, finding 4: "self" streams a command with no sandbox while the log showed read-only.
  it('a read-only proposal accepted with runner "self" is NO_RUNNER: it stays pending, no channel opens, nothing runs', async () => {
    await client.call("run/create", { alias: "self-ro" });
    const { path } = await client.call("proposal/create", { run: "self-ro", tool: "env", command: "touch self-probe" });
    await expect(client.call("run/resolve", { run: "self-ro", path, decision: "accept", runner: "self" })).rejects.toMatchObject({
      data: { code: "NO_RUNNER", runner: "self", sandbox: "read-only" },
    });
    const log = await client.call("entry/get", { run: "self-ro", path });
    expect(log.status).toBe(ENTRY.proposed);
    expect(log.attributes.decision).toBeUndefined();
    expect((await client.call("entry/list", { run: "self-ro" })).entries.map((e: any) => e.path)).toEqual([path]);
    expect(existsSync(join(root, "self-probe"))).toBe(false);
  });

  it("loader variables in a proposal's env are INVALID_PARAMS naming them, and nothing is stored", async () => {
    await client.call("run/create", { alias: "loader" });
    const attempts: [Record<string, string>, string][] = [
      [{ LD_PRELOAD: join(root, "x.so") }, "LD_PRELOAD"],
      [{ LD_LIBRARY_PATH: root, FOO: "1" }, "LD_LIBRARY_PATH"],
      [{ DYLD_INSERT_LIBRARIES: join(root, "x.dylib") }, "DYLD_INSERT_LIBRARIES"],
      [{ GCONV_PATH: root, GLIBC_TUNABLES: "glibc.malloc.check=3" }, "GCONV_PATH, GLIBC_TUNABLES"],
    ];
    for (const tool of ["env", "sh"]) {
      for (const [env, names] of attempts) {
        const error = await client.call("proposal/create", { run: "loader", tool, command: "ls", env }).catch((e: any) => e);
        expect(error.code).toBe(-32602);
        expect(error.message).toContain(`env may not set ${names}`);
        expect(error.data.names).toEqual(names.split(", "));
      }
    }
    expect((await client.call("entry/list", { run: "loader" })).entries).toEqual([]);
    // An ordinary variable still goes through.
    const ok = await runTool(client, "loader", "sh", 'echo "$GREETING"', { env: { GREETING: "hello" } });
    expect(ok.out).toBe("hello\n");
  });
});

describeWithBwrap("a runner refuses loader variables itself (defence in depth)", () => {
  it("runner/exec with LD_PRELOAD in env: not started, stream/aborted says why, nothing ran", async () => {
    const root = realpathSync(tempDir("spool-attack-runner-"));
    // A scripted server on the other end of an in-memory connection: it sends what the real server refuses to.
    const [runnerSide, serverSide] = createMemoryTransportPair();
    const server = new SpoolClient(serverSide);
    const aborted: any[] = [];
    server.handle("initialize", async () => ({ protocolVersion: "1", server: { name: "scripted", version: "0" }, projectId: 1, connectionId: "c1" }));
    server.handle("runner/attach", async () => ({
      name: "box",
      project: "p",
      resumed: [],
      finished: [],
      maxUnackedChunks: 64,
      resumeToken: "scripted-resume-token-0123456789",
      runnerGraceMs: 30_000,
      default: false,
    }));
    server.handle("stream/aborted", async (params: any) => {
      aborted.push(params);
      return { path: params.path, status: ENTRY.cancelled, changed: true, channels: [] };
    });
    const runner = new RunnerClient({
      connect: async () => new SpoolClient(runnerSide),
      project: "p",
      name: "box",
      backend: new LocalBackend({ defaultCwd: root }),
      log: createLogger("silent"),
    });
    await runner.start();
    for (const [sandbox, readOnly] of [
      ["workspace-write", false],
      [undefined, true],
      [undefined, false],
    ] as const) {
      const reply = await server.request("runner/exec", {
        run: "r",
        path: `log://turn_1/sh/${sandbox ?? (readOnly ? "ro" : "full")}`,
        command: `touch ${join(root, "ran")}`,
        cwd: root,
        cwdRelative: "",
        env: { LD_PRELOAD: join(root, "x.so"), OK: "1" },
        channels: [{ channel: 1, name: "stdout", path: "sh://turn_1/x_1" }],
        timeoutMs: 0,
        readOnly,
        ...(sandbox ? { sandbox } : {}),
      });
      expect(reply).toMatchObject({ started: false, error: expect.stringContaining("env may not set LD_PRELOAD") });
    }
    expect(aborted.map((a) => a.reason)).toEqual(Array(3).fill(expect.stringMatching(/^failed to start: env may not set LD_PRELOAD/)));
    expect(existsSync(join(root, "ran"))).toBe(false);
    await runner.stop();
    server.close();
    rmSync(root, { recursive: true, force: true });
  });
});

describeWithBwrap("a sandboxed command does not reach the server's token, database or /tmp", () => {
  let ts: TestServer;
  let root: string;
  let separate: SpoolClient;
  const hostTmp = `/tmp/spool-host-marker-${process.pid}`;
  beforeAll(async () => {
    ts = await startTestServer();
    root = realpathSync(tempDir("spool-attack-root-"));
    separate = await ts.client();
    await separate.initialize("attack-state", { root });
    writeFileSync(hostTmp, "host-tmp-file\n");
  });
  afterAll(async () => {
    await ts.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(hostTmp, { force: true });
  });

  const look = (home: string, token: string, db: string) =>
    [
      `cat ${token} 2>/dev/null; echo "token=$?"`,
      `head -c 15 ${db} 2>/dev/null; echo "db=$?"`,
      `ls -A ${home} | grep -c -e token -e spool.db -e processes`,
      `cat ${hostTmp} 2>/dev/null; echo "tmp=$?"`,
    ].join("; ");

  it("a project apart from the home: the home is an empty directory, the token and database are not there, /tmp is its own", async () => {
    const { home, tokenFile, dbFile } = ts.server.config;
    for (const tool of ["env", "sh"] as const) {
      const done = await runTool(separate, `state-${tool}`, tool, look(home, tokenFile, dbFile));
      expect(done.out).not.toContain(ts.server.token);
      expect(done.out).not.toContain("SQLite format");
      expect(done.out).not.toContain("host-tmp-file");
      expect(done.out).toMatch(/token=1\n.*db=1\n0\ntmp=1\n$/s);
    }
  });

  it("a project whose root is the server's home, inside it or holding it is refused (issue 37): nothing a command writes is read at the server's start", async () => {
    const { home } = ts.server.config;
    for (const [name, root] of [
      ["attack-home", home],
      ["attack-inside", join(home, "runners")],
      ["attack-holding", dirname(home)],
    ] as const) {
      const client = await ts.client();
      await expect(client.initialize(name, { root })).rejects.toMatchObject({
        errorCode: "INVALID_PARAMS",
        message: expect.stringMatching(/Spool home|holds/),
      });
    }
    // A link to the home is the home.
    const link = join(root, "home-link");
    symlinkSync(home, link);
    const client = await ts.client();
    await expect(client.initialize("attack-link", { root: link })).rejects.toMatchObject({ errorCode: "INVALID_PARAMS" });
    expect((await client.call("project/list", {})).projects.map((p) => p.name)).not.toContain("attack-home");
  });

  it("/tmp is the command's own: what it writes there is gone afterwards and the next command does not see it", async () => {
    const name = `/tmp/spool-sandbox-own-${process.pid}`;
    const first = await runTool(separate, "tmp", "sh", `echo own > ${name} && cat ${name}`);
    expect(first.out).toBe("own\n");
    expect(existsSync(name)).toBe(false);
    const second = await runTool(separate, "tmp", "sh", `cat ${name} 2>/dev/null; echo "seen=$?"`);
    expect(second.out).toBe("seen=1\n");
  });
});

describeWithBwrap("an ordinary sh command does not read the server's environment (a real spool serve)", () => {
  let serve: ServeProcess;
  let home: string;
  let root: string;
  let client: SpoolClient;
  const secret = `sk-secret-${process.pid}-do-not-print`;
  const password = `hunter2-${process.pid}`;
  beforeAll(async () => {
    home = tempDir("spool-attack-serve-");
    root = realpathSync(tempDir("spool-attack-root-"));
    serve = await spawnServe(["--port", "0", "--home", home], {
      OPENAI_API_KEY: secret,
      DATABASE_URL: `postgres://app:${password}@127.0.0.1:1/app`,
    });
    client = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    await client.initialize("attack-proc", { root });
  }, 60_000);
  afterAll(async () => {
    client?.close();
    await serve?.stop();
    rmSync(home, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  });

  const scan = `echo "parent=$PPID"; tr '\\0' '\\n' < /proc/$PPID/environ; for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < "$f"; done 2>/dev/null; echo scanned`;

  it("the default (workspace-write): /proc/$PPID/environ and a scan of /proc/*/environ show none of the server's secrets", async () => {
    const done = await runTool(client, "proc", "sh", scan);
    expect(done.log.attributes.sandbox).toBe("workspace-write");
    expect(done.out).toContain("scanned\n");
    expect(done.out).not.toContain(secret);
    expect(done.out).not.toContain(password);
    // Its parent is the sandbox's own init: the server is not in its PID namespace at all.
    expect(done.out).toMatch(/^parent=[01]\n/);
  });

  it("full (asked for by the proposal, shown before the decision): the same user's /proc is readable — what SPEC says full does not protect", async () => {
    const done = await runTool(client, "proc-full", "sh", scan, { sandbox: "full" });
    expect(done.log.attributes.sandbox).toBe("full");
    expect(done.out).toContain(secret);
  });
});

describeWithInfra("ssh", "a proposal's TERM does not reach the SSH login outside the sandbox (issue 23 review, finding 3)", () => {
  it("the pty sshd allocates is always of Spool's type; the proposal's TERM applies inside the command", async () => {
    const terms: string[] = [];
    const options = { host: infra.ssh!.host, port: infra.ssh!.port, username: infra.ssh!.username, privateKey: sshKey(), hostKeys: sshHostKeys() };
    const real = ssh2Shell(options);
    // The real connection to sshd, noting the terminal type each session asks sshd (and so the login shell) for.
    const shell: RemoteShell = {
      exec: (line, opts) => {
        if (opts?.pty) terms.push(opts.pty.term);
        return real.exec(line, opts);
      },
      close: () => real.close(),
    };
    const backend = new SshBackend({ ...options, shell, sandbox: "off" });
    try {
      const execution = await backend.start({
        command: 'echo "TERM=$TERM"',
        env: { TERM: "evil-term" },
        tty: { cols: 80, rows: 24 },
        signal: new AbortController().signal,
      });
      const chunks: Buffer[] = [];
      execution.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
      execution.stderr.resume();
      await execution.result;
      expect(Buffer.concat(chunks).toString()).toContain("TERM=evil-term");
      expect(terms).toEqual([TTY_TERM]);
    } finally {
      await backend.close();
    }
  });
});

// The SSH host is this machine (scripts/test-infra.sh), with its bubblewrap; the login is another user of it.
describeWithBwrap("SSH: workspace-write never has the login's home as its workspace; a moved cwd is refused (issue 23 review, findings 1-2)", () =>
  describeWithInfra("ssh", "bubblewrap on the remote host", () => {
    const options = () => ({ host: infra.ssh!.host, port: infra.ssh!.port, username: infra.ssh!.username, privateKey: sshKey(), hostKeys: sshHostKeys() });
    let backend: SshBackend;
    let root: string;
    let outside: string;
    beforeAll(() => {
      backend = new SshBackend(options());
      root = mkdtempSync("/var/tmp/spool-ssh-ww-");
      outside = mkdtempSync("/var/tmp/spool-ssh-out-");
      chmodSync(root, 0o777);
      chmodSync(outside, 0o777);
    });
    afterAll(async () => {
      await backend.close();
      rmSync(root, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    });
    const start = (command: string, extra: { cwd?: string; workspace?: string }) =>
      backend.start({ command, env: {}, sandbox: { mode: "workspace-write" }, signal: new AbortController().signal, ...extra });
    const output = async (execution: Awaited<ReturnType<typeof start>>) => {
      const chunks: Buffer[] = [];
      const errors: Buffer[] = [];
      execution.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
      execution.stderr.on("data", (chunk: Buffer) => errors.push(chunk));
      const result = await execution.result;
      const text = Buffer.concat(chunks).toString();
      // Nothing on stdout: say what the command's end and stderr were, so a failure names its cause.
      if (text === "") return `(no output; exit ${result.exitCode}, signal ${result.signal}, stderr ${JSON.stringify(Buffer.concat(errors).toString())})`;
      return text;
    };

    it("no --root (the workspace is the login directory, its home): refused before anything runs, naming --root", async () => {
      const refused = await start(`touch ~/spool-home-probe-${process.pid}`, {}).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(StartError);
      expect((refused as Error).message).toMatch(/runner user's home directory .*--root DIR/);
      const check = await backend.start({ command: `[ -e ~/spool-home-probe-${process.pid} ]; echo $?`, env: {}, signal: new AbortController().signal });
      expect(await output(check)).toBe("1\n");
    });

    it("a workspace that has them: the dotfiles a login runs are read-only inside it", async () => {
      writeFileSync(join(root, ".profile"), "# login\n", { mode: 0o666 });
      chmodSync(join(root, ".profile"), 0o666);
      mkdirSync(join(root, ".ssh"), { mode: 0o777 });
      chmodSync(join(root, ".ssh"), 0o777);
      const done = await output(
        await start(
          "{ echo x >> .profile; } 2>/dev/null && echo profile=written || echo profile=refused; { echo x > .ssh/rc; } 2>/dev/null && echo rc=written || echo rc=refused; echo x > made && echo made=written",
          { workspace: root, cwd: root },
        ),
      );
      expect(done).toBe("profile=refused\nrc=refused\nmade=written\n");
      expect(readFileSync(join(root, ".profile"), "utf8")).toBe("# login\n");
    });

    it("a secret not there yet inside the workspace, or a home that is there: refused, nothing created (issues 37, 73)", async () => {
      const token = join(root, "token");
      const refuse = (command: string, secrets: string[]) =>
        backend
          .start({ command, env: {}, sandbox: { mode: "workspace-write", secrets }, signal: new AbortController().signal, workspace: root, cwd: root })
          .catch((error: unknown) => error);
      const refused = await refuse(`echo forged > ${token}`, [token]);
      expect(refused).toBeInstanceOf(StartError);
      expect((refused as Error).message).toContain(`the command's view would hold ${token}`);
      expect(existsSync(token)).toBe(false);
      const home = join(root, "home");
      mkdirSync(home, { mode: 0o777 });
      chmodSync(home, 0o777);
      const config = join(home, "config.json");
      const held = await refuse(`echo forged > ${config}; echo ran`, [home, config]);
      expect(held).toBeInstanceOf(StartError);
      expect((held as Error).message).toContain(`the command's view would hold ${home}`);
      expect(existsSync(config)).toBe(false);
    });

    it("a cwd swapped for a symbolic link that leads out of the workspace: refused, nothing runs", async () => {
      symlinkSync(outside, join(root, "sub"));
      const refused = await start(`touch moved-probe`, { workspace: root, cwd: join(root, "sub") }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(StartError);
      expect((refused as Error).message).toMatch(/outside the project root/);
      expect(existsSync(join(outside, "moved-probe"))).toBe(false);
    });
  }),
);
