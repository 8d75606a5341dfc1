import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import Docker from "dockerode";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Backend, BackendUnavailable } from "../../src/runners/backend.js";
import { DockerBackend } from "../../src/runners/docker/docker.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { SshBackend } from "../../src/runners/ssh/ssh.js";
import { closeSshOutside, describeWithInfra, infra, sshHostKeys, sshKey, sshOutside } from "../helpers/infra.js";

const MB50 = 50 * 1024 * 1024;

async function bytes(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** Reads `stream` to its end (`all`); `seen` resolves once `marker` has come. */
function readUntil(stream: Readable, marker: string): { seen: Promise<void>; all: Promise<string> } {
  let mark!: () => void;
  const seen = new Promise<void>((resolve) => (mark = resolve));
  const all = (async () => {
    let text = "";
    for await (const chunk of stream) if ((text += String(chunk)).includes(marker)) mark();
    return text;
  })();
  return { seen, all };
}

async function run(backend: Backend, command: string, env: Record<string, string> = {}) {
  const execution = await backend.start({ command, env, signal: new AbortController().signal });
  const [stdout, stderr, result] = await Promise.all([bytes(execution.stdout), bytes(execution.stderr), execution.result]);
  return { stdout, stderr, result, target: execution.describe() };
}

/** Whether a process still runs, asked where it runs. */
type Alive = (target: ReturnType<Awaited<ReturnType<Backend["start"]>>["describe"]>) => Promise<boolean>;

interface Case {
  name: string;
  kind: "local" | "docker" | "ssh";
  make: () => Backend | Promise<Backend>;
  alive: Alive;
  cleanup?: () => Promise<void>;
}

const docker = new Docker();
const EXEC_CONTAINER = `spool-test-exec-${process.pid}`;

const cases: Case[] = [
  {
    name: "local",
    kind: "local",
    make: () => new LocalBackend({ killGraceMs: 1000 }),
    alive: async ({ pid }) => {
      try {
        process.kill(pid!, 0);
        return true;
      } catch {
        return false;
      }
    },
  },
  {
    name: "docker (fresh container per command)",
    kind: "docker",
    make: () => new DockerBackend({ image: infra.dockerImage!, killGraceMs: 1000 }),
    alive: async ({ container }) => {
      try {
        return Boolean((await docker.getContainer(container!).inspect()).State.Running);
      } catch {
        return false; // removed
      }
    },
  },
  {
    name: "docker (exec in a running container)",
    kind: "docker",
    make: async () => {
      // --init reaps the exec's children, so a killed process does not linger as a zombie.
      execFileSync("docker", ["run", "-d", "--init", "--rm", "--network", "none", "--name", EXEC_CONTAINER, infra.dockerImage!, "sleep", "100000"]);
      return new DockerBackend({ container: EXEC_CONTAINER, killGraceMs: 1000 });
    },
    alive: async ({ pid }) => {
      try {
        execFileSync("docker", ["exec", EXEC_CONTAINER, "kill", "-0", String(pid)], { stdio: "ignore" });
        return true;
      } catch {
        return false;
      }
    },
    cleanup: async () => {
      execFileSync("docker", ["rm", "-f", EXEC_CONTAINER], { stdio: "ignore" });
    },
  },
  {
    name: "ssh",
    kind: "ssh",
    make: () =>
      new SshBackend({
        host: infra.ssh!.host,
        port: infra.ssh!.port,
        username: infra.ssh!.username,
        privateKey: sshKey(),
        hostKeys: sshHostKeys(),
        killGraceMs: 1000,
      }),
    // Asked outside the backend's commands: each has a PID namespace of its own there.
    alive: async ({ pid }) => (await sshOutside(`kill -0 ${pid} 2>/dev/null`)) === 0,
  },
];

afterAll(() => {
  closeSshOutside();
});

for (const c of cases) {
  describeWithInfra(c.kind, `backend: ${c.name}`, () => {
    let backend: Backend;
    beforeAll(async () => {
      backend = await c.make();
    });
    afterAll(async () => {
      await backend?.close();
      await c.cleanup?.();
    });

    it("keeps stdout and stderr apart and in order", async () => {
      const { stdout, stderr, result } = await run(backend, "for i in 1 2 3; do echo out$i; echo err$i >&2; done");
      expect(stdout.toString()).toBe("out1\nout2\nout3\n");
      expect(stderr.toString()).toBe("err1\nerr2\nerr3\n");
      expect(result).toMatchObject({ exitCode: 0, signal: null, cancelled: false, timedOut: false });
    });

    it("reports exit codes 0, 3 and 127", async () => {
      // Three commands side by side: each waits on its own start (a container, a channel).
      const [ok, three, missing] = await Promise.all([run(backend, "true"), run(backend, "exit 3"), run(backend, "no-such-command-here")]);
      expect(ok.result.exitCode).toBe(0);
      expect(three.result.exitCode).toBe(3);
      expect(missing.result.exitCode).toBe(127);
      expect(missing.stderr.toString()).toMatch(/not found/);
    });

    it("reports death by a signal as that signal, never as exit 0 (Docker's status 128+9 included)", async () => {
      const { result } = await run(backend, "kill -9 $$");
      expect(result).toMatchObject({ exitCode: null, signal: "SIGKILL" });
    });

    it("passes environment variables, quoted safely", async () => {
      const { stdout } = await run(backend, 'printf "%s" "$SPOOL_X"', { SPOOL_X: "it's $HOME; `true`" });
      expect(stdout.toString()).toBe("it's $HOME; `true`");
    });

    it("carries 50 MB of stdout (with stderr at the same time) intact, without a pipe deadlock", async () => {
      const line = "0123456789abcdefghijklmnopqrstuvwxyz-spool-50mb\n";
      const expected = createHash("sha256")
        .update(Buffer.from(line.repeat(Math.ceil(MB50 / line.length))).subarray(0, MB50))
        .digest("hex");
      const { stdout, stderr, result } = await run(backend, `yes err | head -c 5000000 >&2 & yes '${line.trimEnd()}' | head -c ${MB50}; wait`);
      expect(result.exitCode).toBe(0);
      expect(stdout.length).toBe(MB50);
      expect(createHash("sha256").update(stdout).digest("hex")).toBe(expected);
      expect(stderr.length).toBe(5_000_000);
    }, 120_000);

    it("keeps UTF-8 and binary output byte for byte", async () => {
      const { stdout } = await run(backend, "printf 'h\\303\\251llo \\342\\234\\223\\n\\000\\001\\377\\376'");
      expect([...stdout]).toEqual([...Buffer.from("héllo ✓\n", "utf8"), 0, 1, 255, 254]);
    });

    it("cancel kills the process (and what it started) and says so", async () => {
      const controller = new AbortController();
      const execution = await backend.start({ command: "sleep 300 & echo forked; sleep 301; echo never", env: {}, signal: controller.signal });
      // The shell has started its first child once it says so: the cancel comes after that.
      const { seen, all: out } = readUntil(execution.stdout, "forked\n");
      const err = bytes(execution.stderr);
      const target = await execution.located;
      await seen;
      expect(await c.alive(target)).toBe(true);
      const started = Date.now();
      controller.abort();
      const result = await execution.result;
      const [text] = await Promise.all([out, err]);
      expect(text).toBe("forked\n");
      expect(result.cancelled).toBe(true);
      expect(result.exitCode === 0).toBe(false);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await c.alive(target)).toBe(false);
    });

    it("a timeout kills the process and is reported as timed out", async () => {
      const execution = await backend.start({ command: "sleep 300", env: {}, timeoutMs: 300, signal: new AbortController().signal });
      void bytes(execution.stdout);
      void bytes(execution.stderr);
      const result = await execution.result;
      expect(result).toMatchObject({ timedOut: true, cancelled: false });
      expect(result.exitCode === 0).toBe(false);
    });
  });
}

describeWithInfra("local", "backend: local specifics", () => {
  it("a background grandchild holding the pipes does not hang completion", async () => {
    const backend = new LocalBackend();
    const started = Date.now();
    const { stdout, result } = await run(backend, "sleep 30 & echo done");
    expect(stdout.toString()).toBe("done\n");
    expect(result.exitCode).toBe(0);
    // Not the grandchild's 30 s: 15 leaves a busy machine room.
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("a directory that does not exist fails to start with a clear error", async () => {
    await expect(new LocalBackend().start({ command: "true", cwd: "/no/such/dir", env: {}, signal: new AbortController().signal })).rejects.toThrow(
      /Cannot start the command: .*cwd/,
    );
  });

  it("pumps stdin while reading output", async () => {
    const input = Buffer.alloc(8 * 1024 * 1024, "x");
    const execution = await new LocalBackend().start({ command: "cat", env: {}, stdin: input, signal: new AbortController().signal });
    const [out] = await Promise.all([bytes(execution.stdout), bytes(execution.stderr), execution.result]);
    expect(out.equals(input)).toBe(true);
  });
});

describeWithInfra("ssh", "backend: ssh host keys", () => {
  it("refuses a host whose key is not the expected one", async () => {
    const backend = new SshBackend({
      host: infra.ssh!.host,
      port: infra.ssh!.port,
      username: infra.ssh!.username,
      privateKey: sshKey(),
      hostKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnlyATestKeyThatIsNotTheServersKeyAAAAAAAA"],
    });
    const refused = await backend.start({ command: "true", env: {}, signal: new AbortController().signal }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BackendUnavailable);
    expect((refused as Error).message).toMatch(/^ssh \S+: host key not trusted \(ED25519 SHA256:\S+\) — it is not the key --ssh-host-key gave/);
    await expect(backend.check()).rejects.toThrow(/host key not trusted/);
    await backend.close();
  });

  it("reuses one connection for many commands", async () => {
    const backend = new SshBackend({
      host: infra.ssh!.host,
      port: infra.ssh!.port,
      username: infra.ssh!.username,
      privateKey: sshKey(),
      hostKeys: sshHostKeys(),
    });
    const ports = new Set<string>();
    for (let i = 0; i < 3; i++) ports.add((await run(backend, "echo $SSH_CLIENT | cut -d' ' -f2")).stdout.toString().trim());
    expect(ports.size).toBe(1);
    await backend.close();
  });
});

describeWithInfra("docker", "backend: docker specifics", () => {
  it("a fresh container keeps no log on the engine (log driver none): its output comes over the attach stream alone", async () => {
    const backend = new DockerBackend({ image: infra.dockerImage!, killGraceMs: 1000 });
    const controller = new AbortController();
    try {
      const execution = await backend.start({ command: "echo started; sleep 300", env: {}, signal: controller.signal });
      const { seen, all: out } = readUntil(execution.stdout, "started\n");
      void bytes(execution.stderr);
      const { container } = await execution.located;
      await seen;
      const info = await docker.getContainer(container!).inspect();
      expect(info.HostConfig.LogConfig).toMatchObject({ Type: "none" });
      expect(info.LogPath).toBe("");
      controller.abort();
      await execution.result;
      expect(await out).toBe("started\n");
    } finally {
      await backend.close();
    }
  });

  it("where a command starts without the project mounted: the container's WORKDIR, a proposal's directory under it", async () => {
    const name = `spool-test-workdir-${process.pid}`;
    execFileSync("docker", ["run", "-d", "--init", "--rm", "--network", "none", "-w", "/proc", "--name", name, infra.dockerImage!, "sleep", "100000"]);
    const exec = new DockerBackend({ container: name, killGraceMs: 1000 });
    const unmounted = new DockerBackend({ image: infra.dockerImage!, killGraceMs: 1000 });
    const mounted = new DockerBackend({ image: infra.dockerImage!, killGraceMs: 1000, mountProject: true });
    try {
      for (const backend of [exec, unmounted, mounted]) await backend.check();
      // What the runner says at attach, and every proposal's cwd shows: the WORKDIR; a mounted project runs at its path.
      expect(await exec.root()).toBe("/proc");
      expect(await unmounted.root()).toBe("/");
      expect(await mounted.root()).toBeUndefined();
      const pwd = async (backend: DockerBackend, cwd?: string) => {
        const execution = await backend.start({ command: "pwd", env: {}, ...(cwd ? { cwd } : {}), signal: new AbortController().signal });
        const [out, err, result] = await Promise.all([bytes(execution.stdout), bytes(execution.stderr), execution.result]);
        return `${out}${err}${result.exitCode === 0 ? "" : ` (exit ${result.exitCode})`}`;
      };
      expect(await pwd(exec)).toBe("/proc\n");
      expect(await pwd(exec, "sys")).toBe("/proc/sys\n");
      // A directory the container lacks: the command does not run, and stderr says why (the engine's exec said nothing).
      expect(await pwd(exec, "nosuch")).toMatch(/^\/bin\/sh: .*can't cd to \/proc\/nosuch: No such file or directory\n \(exit 2\)$/);
      expect(await pwd(unmounted, "bin")).toBe("/bin\n");
    } finally {
      for (const backend of [exec, unmounted, mounted]) await backend.close();
      execFileSync("docker", ["rm", "-f", name], { stdio: "ignore" });
    }
  });
});
