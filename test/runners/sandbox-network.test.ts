import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { localBaseEnvironment } from "../../src/runners/environment.js";
import { networkLauncher } from "../../src/runners/sandbox/network.js";
import { bwrapCommand, PROBE_COMMAND } from "../../src/runners/sandbox/sandbox.js";
import { infraRequired } from "../helpers/infra.js";
import { freePort, type RunnerProcess, type ServeProcess, spawnRunner, spawnServe } from "../helpers/process.js";
import { proposeAndAccept } from "../helpers/proposals.js";
import { finished } from "../helpers/runners.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { tempDir } from "../helpers/server.js";

const slirpMissing = spawnSync("slirp4netns", ["--version"]).error ? "slirp4netns is not installed (scripts/test-infra.sh installs it)" : null;
if (slirpMissing && !infraRequired) console.warn(`skipping the sandbox network tests: ${slirpMissing}`);

/**
 * Issue 37, point 1: a workspace-write command on a real `spool runner` tried to take the server's TCP port (and
 * to reach it). In a network namespace of its own it binds a port of its own namespace, and the host's loopback is
 * out of reach.
 */
describeWithBwrap("a sandboxed command has a network of its own (slirp4netns)", () => {
  let home: string;
  let project: string;
  let port: number;
  let serve: ServeProcess;
  let runner: RunnerProcess;
  let client: SpoolClient;
  beforeAll(async () => {
    if (slirpMissing && infraRequired) throw new Error(`SPOOL_TEST_INFRA=required: ${slirpMissing}`);
    home = tempDir();
    project = realpathSync(tempDir("spool-project-"));
    mkdirSync(join(project, ".git"));
    port = await freePort();
    const env = { SPOOL_HOME: home, SPOOL_SERVER: "", SPOOL_TOKEN_FILE: "", SPOOL_PORT: String(port), SPOOL_LOCAL_RUNNER: "off" };
    serve = await spawnServe(["--home", home], env);
    client = await SpoolClient.connect(`ws+unix://${join(home, "spool.sock")}:/`, { token: readFileSync(join(home, "token"), "utf8").trim() });
    await client.initialize("net", { root: project });
    runner = await spawnRunner(["--project", "net", "--name", "box", "--backend", "local", "--default", "--root", project], env);
  });
  afterAll(async () => {
    client?.close();
    await runner?.stop();
    await serve?.stop();
    rmSync(home, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  });

  it.skipIf(slirpMissing !== null && !infraRequired)("runner/list says workspace-write commands get a network namespace of their own", async () => {
    const { runners } = await client.call("runner/list", {});
    expect(runners[0]!.sandbox?.detail).toContain("a network namespace of their own (slirp4netns");
  });

  it.skipIf(slirpMissing !== null && !infraRequired)(
    "it binds the server's port in its own namespace, cannot connect to the host's, and the server keeps it",
    async () => {
      const script = [
        "const net = require('net');",
        `const port = ${port};`,
        "const c = net.connect({ host: '127.0.0.1', port });",
        "c.on('connect', () => { console.log('reached the host port'); c.destroy(); bind(); });",
        "c.on('error', (e) => { console.log('connect: ' + e.code); bind(); });",
        "function bind() { const s = net.createServer(); s.on('error', (e) => { console.log('bind: ' + e.code); }); s.listen(port, '127.0.0.1', () => { console.log('bound'); s.close(); }); }",
      ].join(" ");
      const paths = await proposeAndAccept(client, client, "squat", `${process.execPath} -e "${script}"`, { sandbox: "workspace-write" });
      const done = await finished(client, "squat", paths);
      expect(done.log.attributes.sandbox).toBe("workspace-write");
      expect(done.out.toString()).toBe("connect: ECONNREFUSED\nbound\n");
      // The server still has its port, and answers there.
      const again = await SpoolClient.connect(`ws://127.0.0.1:${port}/`, { token: readFileSync(join(home, "token"), "utf8").trim() });
      expect(await again.call("ping", {})).toMatchObject({ pong: true });
      again.close();
    },
  );
});

/**
 * bwrap's child gives the namespace's loopback its address after it reported its pid; slirp4netns --configure brings
 * lo up (the kernel then adds 127.0.0.1 itself). Started at once, slirp4netns sometimes came first and bwrap died with
 * "loopback: Failed RTM_NEWADDR" before the command ran (a producer of bench/load.ts ended 500 with no line; the
 * runner's network probe said "shared"). Launched many at a time, as a loaded runner does, every one runs.
 */
describeWithBwrap("the network launcher", () => {
  /** The launcher of `command` with this machine's slirp4netns and bwrap (a user namespace where bwrap can make one). */
  const launcherFor = (command: string) => {
    if (slirpMissing) throw new Error(`SPOOL_TEST_INFRA=required: ${slirpMissing}`);
    const slirp = spawnSync("sh", ["-c", "command -v slirp4netns"], { encoding: "utf8" }).stdout.trim();
    const bwrap = spawnSync("sh", ["-c", "command -v bwrap"], { encoding: "utf8" }).stdout.trim();
    const userns = spawnSync(bwrap, bwrapCommand("/", PROBE_COMMAND, true)).status === 0;
    return networkLauncher(slirp, bwrap, bwrapCommand("/", command, userns), []);
  };

  it.skipIf(slirpMissing !== null && !infraRequired)(
    "60 launches, 20 at a time: every sandboxed command runs and exits 0",
    async () => {
      const launch = launcherFor("echo ran");
      const once = () =>
        new Promise<string>((done) =>
          execFile(launch.file, launch.args, { env: { ...localBaseEnvironment(process.env), ...launch.env } }, (error, stdout, stderr) =>
            done(error ? `${error.code ?? error.signal}: ${stderr.trim()}` : stdout),
          ),
        );
      const outcomes: string[] = [];
      let started = 0;
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          while (started < 60) {
            started++;
            outcomes.push(await once());
          }
        }),
      );
      expect(outcomes.filter((o) => o !== "ran\n")).toEqual([]);
      expect(outcomes).toHaveLength(60);
    },
    120_000,
  );

  it.skipIf(slirpMissing !== null && !infraRequired)(
    "a launcher killed while its command runs (a cancel's SIGKILL) leaves nothing in $TMPDIR",
    async () => {
      const tmp = tempDir("spool-launcher-tmp-");
      const launch = launcherFor("echo running; exec sleep 60");
      const child = spawn(launch.file, launch.args, {
        env: { ...localBaseEnvironment(process.env), ...launch.env, TMPDIR: tmp },
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise((done) => child.once("exit", done));
      // The command prints once it runs: the launcher has released it and waits on bwrap.
      await new Promise<void>((running, failed) => {
        child.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("running") && running());
        child.once("exit", () => failed(new Error(`the launch ended before its command ran: ${stderr}`)));
      });
      // While it runs the launcher's directory is already gone; killed now, it has nothing left to remove.
      await expect.poll(() => readdirSync(tmp), { timeout: 10_000 }).toEqual([]);
      process.kill(-child.pid!, "SIGKILL");
      await exited;
      expect(readdirSync(tmp)).toEqual([]);
      rmSync(tmp, { recursive: true, force: true });
    },
    60_000,
  );
});

/**
 * A bwrap that names no pid on --info-fd and still waits on --block-fd (a format the launcher does not read): the
 * launcher kills it and exits with its status, instead of waiting on it for ever with the command never run. A
 * stand-in bwrap (a shell script) plays it; slirp4netns is never reached.
 */
it("a bwrap that names no pid and waits is killed: the launch ends at once with its status, the command never runs", () => {
  const dir = tempDir("spool-fake-bwrap-");
  const fake = join(dir, "bwrap");
  writeFileSync(fake, `#!/bin/sh\necho '{ "something": 1 }' >&3\nexec 3>&-\nread go <&4\necho "the command ran" >&2\n`, { mode: 0o755 });
  const launch = networkLauncher("/nonexistent/slirp4netns", fake, ["--", "/bin/true"], []);
  // Thirty launches: bwrap takes an end of file on --block-fd as the go-ahead, and a launcher that closed it before
  // its kill let the command run in about one launch in ten.
  for (let i = 0; i < 30; i++) {
    const started = Date.now();
    const result = spawnSync(launch.file, launch.args, { env: { PATH: "/usr/bin:/bin", ...launch.env }, encoding: "utf8", timeout: 20_000 });
    expect(result.signal).toBeNull();
    expect(result.stderr).not.toContain("the command ran");
    expect(result.status).toBe(137);
    expect(Date.now() - started).toBeLessThan(20_000);
  }
  rmSync(dir, { recursive: true, force: true });
});
