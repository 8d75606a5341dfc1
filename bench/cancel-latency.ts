// Cancel latency per backend: from the `stream/cancel` call to the process
// being gone, through a real server and an attached runner (the embedded one
// for local; `spool runner` processes for docker and ssh).
// Usage: npx tsx bench/cancel-latency.ts [rounds] [backends, comma-separated]
// Docker and SSH need scripts/test-infra.sh up and its SPOOL_TEST_* variables.
import { readFileSync } from "node:fs";
import Docker from "dockerode";
import { SshBackend } from "../src/runners/ssh/ssh.js";
import { machine, percentile, startRunnerProcess, startServerProcess } from "./common.js";

const rounds = Number(process.argv[2] ?? 20);
const kinds = (process.argv[3] ?? "local,docker,ssh").split(",");
const env = process.env;
const docker = new Docker();
const ssh = env.SPOOL_TEST_SSH_HOST
  ? new SshBackend({
      host: env.SPOOL_TEST_SSH_HOST,
      port: Number(env.SPOOL_TEST_SSH_PORT),
      username: env.SPOOL_TEST_SSH_USER!,
      privateKey: readFileSync(env.SPOOL_TEST_SSH_KEY!),
      hostKeys: [readFileSync(env.SPOOL_TEST_SSH_HOST_KEY!, "utf8")],
    })
  : null;

type Target = { pid?: number; container?: string };
const gone: Record<string, (t: Target) => Promise<boolean>> = {
  local: async ({ pid }) => {
    try {
      process.kill(pid!, 0);
      return false;
    } catch {
      return true;
    }
  },
  docker: async ({ container }) => {
    try {
      return !(await docker.getContainer(container!).inspect()).State.Running;
    } catch {
      return true;
    }
  },
  ssh: async ({ pid }) => {
    const e = await ssh!.start({ command: `kill -0 ${pid} 2>/dev/null`, env: {}, signal: new AbortController().signal });
    e.stdout.resume();
    e.stderr.resume();
    return (await e.result).exitCode !== 0;
  },
};

const runnerFlags: Record<string, () => string[]> = {
  local: () => [],
  docker: () => ["--backend", "docker", "--image", env.SPOOL_TEST_DOCKER_IMAGE ?? "spool-test/busybox:latest"],
  ssh: () => [
    "--backend",
    "ssh",
    "--ssh-host",
    env.SPOOL_TEST_SSH_HOST!,
    "--ssh-port",
    env.SPOOL_TEST_SSH_PORT!,
    "--ssh-user",
    env.SPOOL_TEST_SSH_USER!,
    "--ssh-key",
    env.SPOOL_TEST_SSH_KEY!,
    "--ssh-host-key",
    env.SPOOL_TEST_SSH_HOST_KEY!,
  ],
};

const server = await startServerProcess();
console.log(`machine: ${machine()}`);
console.log(`rounds: ${rounds}; each: start "sleep 300", wait until it runs, stream/cancel, poll until the process is gone`);
console.log("backend  p50_ms  p99_ms  max_ms");
const client = await server.connect();
await client.initialize("bench", { root: server.root });
try {
  for (const kind of kinds) {
    const name = kind === "local" ? "local" : `${kind}-bench`;
    const runner = kind === "local" ? null : await startRunnerProcess(server, "bench", name, runnerFlags[kind]!());
    const latencies: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const run = `${kind}-${i}`;
      await client.request("run/create", { alias: run });
      const { path } = await client.request("proposal/create", { run, tool: "sh", command: "echo up; sleep 300" });
      await client.request("run/resolve", { run, path, decision: "accept", runner: name });
      let target: Target | undefined;
      while (!(target = (await client.request("entry/get", { run, path })).attributes.process)?.pid && !target?.container)
        await new Promise((r) => setTimeout(r, 10));
      const channel = (await client.request("entry/list", { run, pattern: "sh://*_1" })).entries[0].path;
      while ((await client.request("entry/get", { run, path: channel })).bytes === 0) await new Promise((r) => setTimeout(r, 10));
      const t = performance.now();
      await client.request("stream/cancel", { run, path, reason: "bench" });
      while (!(await gone[kind]!(target))) await new Promise((r) => setTimeout(r, 2));
      latencies.push(performance.now() - t);
    }
    latencies.sort((a, b) => a - b);
    console.log(
      [kind.padEnd(7), percentile(latencies, 50).toFixed(1).padEnd(6), percentile(latencies, 99).toFixed(1).padEnd(6), latencies.at(-1)!.toFixed(1)].join("  "),
    );
    runner?.kill("SIGTERM");
  }
} finally {
  client.close();
  await ssh?.close();
  await server.stop();
}
