// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commandLine, escapeControls } from "../../src/cli/commands/runner.js";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { factsText, proposalFacts } from "../../src/protocol/proposal-facts.js";
import { ENTRY } from "../../src/protocol/status.js";
import { projectRoot } from "../../src/runners/client/runner-client.js";
import { fingerprint } from "../../src/runners/ssh/ssh.js";
import { utils } from "../../src/runners/ssh/ssh2.js";
import { describeWithInfra, infra, sshRunnerFlags } from "../helpers/infra.js";
import { type RunnerProcess, spawnCli, spawnRunner } from "../helpers/process.js";
import { runTool } from "../helpers/runners.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * `spool runner` checks its backend before it attaches: a host it cannot trust or log into, an
 * engine without the image, end it at once with one line saying what to do. Once attached it
 * prints a line for each command, and a Docker runner mounts the project root into its containers.
 */

/**
 * A refused runner exits within this long beyond starting up: no retries, no waiting for a timeout (the runner's own
 * are 30 s and more, and failingRunner kills it at 30 s). It leaves room for the engine or sshd of a machine kept busy:
 * with four files at a time on two cores, Docker's refused pull alone took 5.9 s beyond the baseline (5 s was the limit).
 */
const PROMPT_MS = 15_000;

/** Runs `spool runner` that is expected to fail: its exit code and output. */
async function failingRunner(args: string[]) {
  const cli = spawnCli(["runner", ...args]);
  // A runner that hangs instead of exiting is killed (and then fails the timing assertion) rather than holding the test.
  const timer = setTimeout(() => cli.child.kill("SIGKILL"), 30_000);
  const code = await cli.exit;
  clearTimeout(timer);
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

/**
 * `failingRunner`, and how much longer it took than `spool runner --help` started at the same moment (node and tsx
 * starting up, under the same load). Only where the time is checked: the baseline is a process of its own.
 */
async function timedFailingRunner(args: string[]) {
  const started = Date.now();
  const baseline = spawnCli(["runner", "--help"]).exit.then(() => Date.now() - started);
  const failed = await failingRunner(args);
  const ms = Date.now() - started;
  return { ...failed, ms: ms - (await baseline) };
}

/** A fixed ed25519 key that is not the test sshd's (see "names a host key" below for why not a generated one). */
const OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDvHSO6AA8yHgAVxWZrqOtHPIUDu+i1+LC0ovzweE4UU";

function wrongHostKey(): string {
  const file = join(tempDir(), "wrong_host_key.pub");
  writeFileSync(file, `${OTHER_KEY}\n`);
  return file;
}

/** Replaces the value after `flag` in a flag list. */
function withFlag(flags: string[], flag: string, value: string): string[] {
  const at = flags.indexOf(flag);
  return [...flags.slice(0, at), flag, value, ...flags.slice(at + 2)];
}

describe("runner lines and project roots", () => {
  it("escapes control characters and the invisible ones that reorder text", () => {
    expect(escapeControls("echo one\necho two\t\u001b[31mred\r\u0000\u007f\u009b\u202e")).toBe("echo one\\necho two\\t\\e[31mred\\r\\x00\\x7f\\x9b\\u{202e}");
    expect(escapeControls("plain ü ✓ \\n stays")).toBe("plain ü ✓ \\n stays");
  });

  it("prints one line when a command starts and one when it ends, long commands cut", () => {
    const at = new Date("2030-01-02T03:04:05.678Z");
    expect(commandLine({ kind: "started", run: "r1", path: "1/sh/ls", command: "ls\n-la" }, at)).toBe("2030-01-02T03:04:05Z r1 1/sh/ls $ ls\\n-la");
    expect(commandLine({ kind: "ended", run: "r1", path: "1/sh/ls", outcome: "exit 0", durationMs: 1234 }, at)).toBe(
      "2030-01-02T03:04:05Z r1 1/sh/ls → exit 0 (1.2 s)",
    );
    const long = commandLine({ kind: "started", run: "r", path: "p", command: "x".repeat(1000) }, at);
    expect(long).toMatch(/\$ x{300}… \(700 more\)$/);
  });

  it("tells the project root from the exec message's cwd, and not when the cwd is outside it", () => {
    expect(projectRoot("/srv/app", "")).toBe("/srv/app");
    expect(projectRoot("/srv/app/src/lib", "src/lib")).toBe("/srv/app");
    expect(projectRoot("/src", "src")).toBe("/");
    expect(projectRoot("/srv/other", "../other")).toBeNull();
    expect(projectRoot("/srv/app/x", "y")).toBeNull();
  });

  it("names a host key as ssh-keygen does", () => {
    // A fixed key and what `ssh-keygen -lf` prints for it (a generated one would make this flaky: ssh2's
    // generateKeyPairSync("ed25519") yields an unparsable public key about 3 times in 1000).
    const line = OTHER_KEY;
    const key = utils.parseKey(line);
    if (key instanceof Error || Array.isArray(key)) throw new Error(`unparsable test key: ${String(key)}`);
    expect(fingerprint(key.getPublicSSH())).toBe("ED25519 SHA256:6sdKRr0TAU4AHpPMyrWMFTXXOxJ6y3Y6EkX5xTk5CI8");
    expect(fingerprint(Buffer.from(line.split(" ")[1]!, "base64"))).toBe("ED25519 SHA256:6sdKRr0TAU4AHpPMyrWMFTXXOxJ6y3Y6EkX5xTk5CI8");
  });
});

describe("spool runner (local) before attaching", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
  });
  afterAll(() => ts.stop());

  it("a --root that is not a directory ends the runner with the reason; nothing attaches", async () => {
    const missing = join(tempDir(), "no-such-dir");
    const args = ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "check-local", "--name", "l1", "--backend", "local"];
    const failed = await failingRunner([...args, "--root", missing]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toBe(`spool runner: local: ${missing} is not a directory — create it, or name another project root with --root DIR\n`);
    expect(failed.stdout).not.toMatch(/attached/);
    const client = await ts.clientIn("check-local");
    expect((await client.call("runner/list", {})).runners).toEqual([]);
  });
});

describeWithInfra("ssh", "spool runner (ssh) before attaching", () => {
  let ts: TestServer;
  let client: SpoolClient;
  const base = () => ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "check-ssh", "--name", "ssh-check"];
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    client = await ts.clientIn("check-ssh");
  });
  afterAll(() => ts.stop());

  it("a host key other than --ssh-host-key's: exits 1 at once with the fingerprint and what to do, never attaches", async () => {
    const failed = await timedFailingRunner([...base(), ...withFlag(sshRunnerFlags(), "--ssh-host-key", wrongHostKey())]);
    expect(failed.code).toBe(1);
    expect(failed.ms).toBeLessThan(PROMPT_MS);
    const where = `${infra.ssh!.host}:${infra.ssh!.port}`;
    expect(failed.stderr).toMatch(
      new RegExp(`^spool runner: ssh ${where.replace(/\./g, "\\.")}: host key not trusted \\(ED25519 SHA256:[^)]+\\) — .*--ssh-host-key`),
    );
    expect(failed.stderr.trim().split("\n")).toHaveLength(1);
    expect(failed.stdout).not.toMatch(/attached/);
    expect((await client.call("runner/list", {})).runners).toEqual([]);
  });

  it("a known_hosts file with another key for the host, or none: the same, naming the file", async () => {
    const { host, port } = infra.ssh!;
    const knownHosts = join(tempDir(), "known_hosts");
    const sshFlags = sshRunnerFlags().filter((_, i, all) => all[i] !== "--ssh-host-key" && all[i - 1] !== "--ssh-host-key");
    writeFileSync(knownHosts, `[${host}]:${port} ${readFileSync(wrongHostKey(), "utf8")}`);
    const wrong = await timedFailingRunner([...base(), ...sshFlags, "--ssh-known-hosts", knownHosts]);
    expect(wrong.code).toBe(1);
    expect(wrong.ms).toBeLessThan(PROMPT_MS);
    expect(wrong.stderr).toMatch(new RegExp(`host key not trusted \\(ED25519 SHA256:[^)]+\\) — add it to ${knownHosts} or pass --ssh-host-key FILE\\n$`));
    writeFileSync(knownHosts, `[${host}]:${port + 1} ${readFileSync(infra.ssh!.hostKeyFile, "utf8")}`);
    const none = await failingRunner([...base(), ...sshFlags, "--ssh-known-hosts", knownHosts]);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(
      `spool runner: ssh ${host}:${port}: no key for this host in ${knownHosts} — add it to ${knownHosts} or pass --ssh-host-key FILE\n`,
    );
    expect((await client.call("runner/list", {})).runners).toEqual([]);
  });

  it("a user the host does not let in: login refused, at once", async () => {
    const failed = await timedFailingRunner([...base(), ...withFlag(sshRunnerFlags(), "--ssh-user", "no-such-spool-user")]);
    expect(failed.code).toBe(1);
    expect(failed.ms).toBeLessThan(PROMPT_MS);
    expect(failed.stderr).toMatch(/^spool runner: ssh no-such-spool-user@\S+: login refused — check --ssh-user/);
  });

  it("the right key: attaches (after running a trivial command there)", async () => {
    const runner = await spawnRunner([...base(), ...sshRunnerFlags()]);
    try {
      expect((await client.call("runner/list", {})).runners).toEqual([expect.objectContaining({ name: "ssh-check", backend: "ssh" })]);
    } finally {
      await runner.stop();
    }
  });
});

describeWithInfra("docker", "spool runner (docker): the check, the project mount and its command lines", () => {
  let ts: TestServer;
  let client: SpoolClient;
  let root: string;
  const runners: RunnerProcess[] = [];
  const base = (name: string) => ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "check-docker", "--name", name];

  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    root = realpathSync(tempDir("spool-mount-"));
    mkdirSync(join(root, "sub"));
    writeFileSync(join(root, "sub", "seen.txt"), "from the host\n");
    client = await ts.client();
    await client.initialize("check-docker", { root });
    runners.push(await spawnRunner([...base("fresh"), "--backend", "docker", "--image", infra.dockerImage!]));
    runners.push(await spawnRunner([...base("unmounted"), "--backend", "docker", "--image", infra.dockerImage!, "--no-mount"]));
  }, 60_000);
  afterAll(async () => {
    for (const r of runners) await r.stop();
    await ts?.stop();
  });

  it("an image that is not here and cannot be pulled: exits 1 at once saying so, never attaches", async () => {
    const image = "127.0.0.1:1/spool-missing:never";
    const failed = await timedFailingRunner([...base("no-image"), "--backend", "docker", "--image", image]);
    expect(failed.code).toBe(1);
    expect(failed.ms).toBeLessThan(PROMPT_MS);
    expect(failed.stderr).toMatch(new RegExp(`^spool runner: docker: image ${image} not found and could not be pulled: .*connection refused`));
    expect(failed.stderr.trim().split("\n")).toHaveLength(1);
    expect(failed.stdout).toBe(`docker: image ${image} is not here; pulling it\n`);
    const names = (await client.call("runner/list", {})).runners.map((r: any) => r.name);
    expect(names).not.toContain("no-image");
  });

  it("a container that does not exist: exits 1 at once saying so", async () => {
    const failed = await timedFailingRunner([...base("no-container"), "--backend", "docker", "--container", `spool-missing-${process.pid}`]);
    expect(failed.code).toBe(1);
    expect(failed.ms).toBeLessThan(PROMPT_MS);
    expect(failed.stderr).toBe(
      `spool runner: docker: container spool-missing-${process.pid} not found — start it first, or pass --image to use fresh containers\n`,
    );
  });

  it("an sh command writes into the mounted project root, starting in its cwd there; the file is on the host", async () => {
    const sh = await runTool(client, "m1", "sh", "pwd; cat seen.txt; echo made-in-docker > ../made-by-sh.txt", { runner: "fresh", cwd: "sub" });
    expect(sh.err).toBe("");
    expect(sh.out).toBe(`${join(root, "sub")}\nfrom the host\n`);
    expect(sh.stdout.status).toBe(ENTRY.done);
    expect(readFileSync(join(root, "made-by-sh.txt"), "utf8")).toBe("made-in-docker\n");
  });

  it("an env command sees the root but cannot write there", async () => {
    const env = await runTool(client, "m2", "env", 'cat sub/seen.txt; touch made-by-env; echo "touch=$?"', { runner: "fresh" });
    expect(env.out).toBe("from the host\ntouch=1\n");
    expect(env.err).toMatch(/Read-only file system/);
    expect(existsSync(join(root, "made-by-env"))).toBe(false);
  });

  it("--no-mount: the container starts in the image's directory and does not see the root; the card says where", async () => {
    const sh = await runTool(client, "m3", "sh", `pwd; ls ${root} 2>&1 >/dev/null | wc -l`, { runner: "unmounted" });
    expect(sh.out).toBe("/\n1\n");
    // Where it runs is the image's WORKDIR (`/` for this one), said at attach: runner/list and every proposal's cwd show
    // it, and a proposal's directory under the project root is taken under it (not the server's path, nor relative).
    const listed = (await client.call("runner/list", {})).runners;
    expect(listed.find((r) => r.name === "unmounted")).toMatchObject({ root: "/" });
    expect(listed.find((r) => r.name === "fresh")?.root ?? null).toBeNull();
    // And each runner says it as it attaches.
    expect(runners[1]!.output()).toContain(`\nProject root: / on this runner (the server's is ${root}); a command's cwd is taken under it\n`);
    expect(runners[0]!.output()).toContain(`\nProject root: ${root}, the server's path; a command's cwd is taken under it\n`);
    await client.call("run/create", { alias: "m4" });
    const { path } = await client.call("proposal/create", { run: "m4", tool: "sh", command: "pwd", cwd: "sub", runner: "unmounted" });
    const facts = proposalFacts((await client.call("entry/get", { run: "m4", path })).attributes);
    expect(factsText(facts)).toMatch(new RegExp(`^cwd +/sub \\(under the project root on the runner, /; the server's is ${root}\\)$`, "m"));
    // Nor does its sandbox give the project: the card does not say it does.
    expect(factsText(facts)).toMatch(
      /^sandbox +workspace-write \(sandbox: only its private \/tmp is writable; sees the image \S+ read-only, none of the project \(its runner does not mount it\), a private \/tmp; nothing else\)$/m,
    );
    await client.call("run/resolve", { run: "m4", path, decision: "reject" });
    // A directory the image has (and, for the proposal to name it, the project too).
    mkdirSync(join(root, "bin"), { recursive: true });
    const sub = await runTool(client, "m4", "sh", "pwd", { runner: "unmounted", cwd: "bin" });
    expect(sub.out).toBe("/bin\n");
  });

  it("the runner prints a line as each command starts and another as it ends", async () => {
    const sh = await runTool(client, "lines", "sh", "echo one\necho two; exit 3", { runner: "fresh" });
    expect(sh.out).toBe("one\ntwo\n");
    const output = () => runners[0]!.output();
    const at = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ";
    const path = sh.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    await eventually(() => new RegExp(`${at} lines ${path} → exit 3 \\(\\d+\\.\\d s\\)\\n`).test(output()), 5_000, "the end line");
    expect(output()).toMatch(new RegExp(`${at} lines ${path} \\$ echo one\\\\necho two; exit 3\\n`));
  });
});
