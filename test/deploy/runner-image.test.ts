import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmodSync, chownSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { toolCache } from "../../scripts/test-tools.mjs";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { describeWithInfra, registryEnv } from "../helpers/infra.js";
import { type Manifest, runnerContainer, runnerManifests } from "../helpers/kubernetes.js";
import { ensureRun } from "../helpers/proposals.js";
import { finished } from "../helpers/runners.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/*
 * The runner image as docs/runners.md builds it (scripts/runner-image.mjs: no image registry) and run under the
 * Docker engine as deploy/kubernetes/runner.yaml runs it in a pod: the Deployment's args and env (the pod's name, the
 * server's address and the project filled in), its user, a read-only root filesystem, no capabilities, no privilege
 * escalation, the credential mounted read-only as its Secret is, writable volumes where the pod has them. It dials
 * out to a Spool server on this machine (the host's network: the engine here has no bridge), attaches as a runner of
 * the pool, and runs an accepted command. Then the pod's termination: the preStop hook's drain (a command accepted
 * for the pool afterwards waits in the queue), SIGTERM, and the runner exits only once its running command has ended.
 */

const root = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);
const PROJECT = "k8s";
const POOL = { labels: { pool: "kubernetes" } };

/** The ```sh TAG block of docs/runners.md. */
function docBlock(tag: string): string {
  const found = new RegExp(`\`\`\`sh ${tag}\\n([\\s\\S]*?)\`\`\``).exec(readFileSync(join(root, "docs", "runners.md"), "utf8"));
  if (!found) throw new Error(`docs/runners.md has no \`\`\`sh ${tag} block`);
  return found[1]!;
}

/** Proposes `command` for the pool (the proposal names it, and every client shows it) and accepts it. */
async function forPool(client: SpoolClient, run: string, command: string) {
  await ensureRun(client, run);
  const { path } = await client.call("proposal/create", { run, tool: "sh", command, runner: POOL });
  const resolved = await client.call("run/resolve", { run, path, decision: "accept" });
  const [stdout, stderr] = resolved.channels.map((c) => c.path) as [string, string];
  return { path, stdout, stderr, resolved };
}

/** `$(NAME)` in a container's args, as the kubelet expands them from its env. */
function expand(arg: string, env: Record<string, string>): string {
  return arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole);
}

describeWithInfra("docker", "the runner image, built by the recipe and run as the Kubernetes Deployment runs it", () => {
  let ts: TestServer;
  let admin: SpoolClient;
  let image: string;
  let name: string;
  let container: Manifest;
  let logs: ChildProcess | null = null;
  let output = "";

  beforeAll(async () => {
    // The recipe as the docs give it, on the Node running the suite (a Node line's pass: that line's, whose ABI the
    // native addons have then); it takes that Node's binary from the tests' tools (scripts/test-tools.mjs), same layout.
    const started = Date.now();
    const built = await run("sh", ["-c", docBlock("runner-image")], {
      cwd: root,
      env: registryEnv({ ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}`, SPOOL_IMAGE_CACHE: toolCache() }),
      timeout: 540_000,
      maxBuffer: 16 * 1024 * 1024,
    }).catch((error: Error & { stderr?: string }) => {
      throw new Error(`the recipe failed: ${error.message}\n${error.stderr ?? ""}`);
    });
    image = built.stdout.trim().split("\n").at(-1)!;
    console.info(`${built.stderr.trim()} (the test waited ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    container = runnerContainer(runnerManifests());
    expect(container.image).toBe(image);

    ts = await startTestServer();
    admin = await ts.clientIn(PROJECT);
    name = `runner-pod-${process.pid}`;
    const { token } = await admin.call("token/create", { name: "k8s-runners", role: "runner", projects: [PROJECT] });
    // The Secret's file: 0440, the pod's group (fsGroup) may read it.
    const tokenFile = join(tempDir("spool-k8s-secret-"), "token");
    writeFileSync(tokenFile, `${token}\n`);
    chmodSync(tokenFile, 0o440);
    const { runAsUser: uid, runAsGroup: gid } = runnerPod().securityContext as { runAsUser: number; runAsGroup: number };
    if (process.getuid?.() === 0) chownSync(tokenFile, 0, gid);
    else chmodSync(tokenFile, 0o444);

    // The pod's environment: the manifest's, with the values a cluster would give it.
    const env: Record<string, string> = {};
    for (const e of container.env as Manifest[]) env[e.name] = e.value ?? "";
    env.POD_NAME = name;
    env.SPOOL_SERVER = ts.server.url;
    env.SPOOL_PROJECT = PROJECT;
    const mounts = (container.volumeMounts as Manifest[]).flatMap((m) =>
      m.readOnly
        ? ["-v", `${tokenFile}:${env.SPOOL_TOKEN_FILE}:ro`]
        : ["--tmpfs", `${m.mountPath}:uid=${uid},gid=${gid},mode=${m.mountPath === "/tmp" ? "1777" : "0700"}`],
    );
    const security = container.securityContext as Manifest;
    await run(
      "docker",
      [
        "run",
        "-d",
        "--name",
        name,
        // The pod's pause process reaps orphans (shareProcessNamespace); here docker's init does.
        "--init",
        "--network",
        "host",
        "--user",
        `${uid}:${gid}`,
        ...(security.readOnlyRootFilesystem ? ["--read-only"] : []),
        ...(security.capabilities?.drop?.includes("ALL") ? ["--cap-drop", "ALL"] : []),
        ...(security.allowPrivilegeEscalation === false ? ["--security-opt", "no-new-privileges"] : []),
        "--memory",
        String(container.resources.limits.memory).replace(/Gi$/, "g"),
        ...mounts,
        ...Object.entries(env).flatMap(([key, value]) => ["-e", `${key}=${value}`]),
        image,
        ...(container.args as string[]).map((arg) => expand(arg, env)),
      ],
      { timeout: 60_000 },
    );
    logs = spawn("docker", ["logs", "-f", name], { stdio: ["ignore", "pipe", "pipe"] });
    logs.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    logs.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    await eventually(
      async () => (await admin.call("runner/list", {})).runners.some((r) => r.name === name),
      60_000,
      `runner ${name} to attach from its container:\n${output}`,
    );
    // What it printed comes through `docker logs -f`, which may trail the attach the server saw (ciC, busy: the first
    // test read the output without the line, 106 ms in).
    await eventually(
      () => output.includes(`Runner ${name} attached`),
      30_000,
      () => `the runner's line saying it attached:\n${output}`,
    );
  }, 600_000);

  afterAll(async () => {
    if (name) await run("docker", ["rm", "-f", name]).catch(() => undefined);
    logs?.kill();
    await ts?.stop();
  });

  const runnerPod = () => runnerManifests().find((m) => m.kind === "Deployment")!.spec.template.spec as Manifest;

  it("attaches as a runner of the pool, from inside its container, as the pod's user, with the sandbox mode the manifest states (full)", async () => {
    const listed = (await admin.call("runner/list", {})).runners.find((r) => r.name === name)!;
    expect(listed).toMatchObject({
      backend: "local",
      labels: { pool: "kubernetes" },
      capacity: 2,
      state: "claiming",
      attachedBy: { name: "k8s-runners", role: "runner" },
    });
    expect(listed.sandbox.modes).toEqual(["full"]);
    expect(output).toContain(`Runner ${name} attached to ${ts.server.url} (project ${PROJECT})`);
    const { stdout: inspected } = await run("docker", [
      "inspect",
      "--format",
      "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{json .Config.ExposedPorts}}",
      name,
    ]);
    expect(inspected.trim()).toBe(`${runnerPod().securityContext.runAsUser}:${runnerPod().securityContext.runAsGroup} true null`);
  });

  it("runs an accepted command for the pool: in its --root, as 10001, with a clean environment (no credential, no server address)", async () => {
    const paths = await forPool(admin, "first", 'echo "$(id -u) $(pwd)"; env | sort | cut -d= -f1 | tr "\\n" " "');
    expect(paths.resolved.runner).toBe(name);
    const done = await finished(admin, "first", paths, 60_000);
    const [who, vars] = done.out.toString().split("\n");
    expect(who).toBe("10001 /workspace");
    expect(vars!.trim().split(" ")).not.toEqual(expect.arrayContaining(["SPOOL_SERVER"]));
    expect(vars).not.toMatch(/SPOOL_|POD_NAME/);
    expect(done.log.attributes).toMatchObject({ exit_code: 0 });
  });

  it("terminates as a pod does: preStop drains it (new work waits in the queue), SIGTERM waits for the running command, then it exits 0", async () => {
    // A command that runs until it is told to end: it waits on a FIFO in the workspace.
    const running = await forPool(admin, "long", "mkfifo go; echo started; read word < go; echo finished $word");
    await eventually(
      async () => (await admin.call("entry/get", { run: "long", path: running.stdout })).body.includes("started"),
      30_000,
      "the long command to start",
    );

    // preStop, as the kubelet runs it: an exec in the container.
    const preStop = (container.lifecycle.preStop.exec.command as string[]).slice();
    const { stdout: drained } = await run("docker", ["exec", name, ...preStop], { timeout: 60_000 });
    expect(drained).toContain(`draining ${name}: it takes nothing new`);
    expect((await admin.call("runner/list", {})).runners.find((r) => r.name === name)).toMatchObject({ state: "draining", running: 1 });
    const queued = await forPool(admin, "later", "echo never here");
    expect(queued.resolved.runner).toBeNull();

    // Then SIGTERM: the runner drains and keeps running while its command does.
    await run("docker", ["kill", "--signal", "TERM", name]);
    await eventually(() => output.includes("Received SIGTERM, draining"), 30_000, `the runner to say it drains:\n${output}`);
    const state = async () => (await run("docker", ["inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", name])).stdout.trim();
    expect(await state()).toBe("true 0");
    expect((await admin.call("entry/get", { run: "long", path: running.stdout })).status).toBe(ENTRY.streaming);

    await run("docker", ["exec", name, "sh", "-c", "echo now > /workspace/go"]);
    const done = await finished(admin, "long", running, 60_000);
    expect(done.out.toString()).toBe("started\nfinished now\n");
    expect(done.log.attributes).toMatchObject({ exit_code: 0 });
    const { stdout: exitCode } = await run("docker", ["wait", name], { timeout: 60_000 });
    expect(exitCode.trim()).toBe("0");
    expect(output).toContain("Drained: nothing runs, stopping the runner");

    // The command accepted after the drain was never taken: it waits for another runner of the pool, and can be cancelled.
    expect((await admin.call("runner/queue", {})).queued).toMatchObject([{ run: "later", path: queued.path }]);
    await admin.call("stream/cancel", { run: "later", path: queued.path });
  });
});
