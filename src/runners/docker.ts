import type { Duplex, Readable } from "node:stream";
import Docker from "dockerode";
import { type Backend, type ExecResult, type ExecSpec, type Execution, type ExecutionTarget, StartError } from "./backend.js";
import { noSandbox, once, SANDBOX_OFF, type SandboxInfo, type SandboxMode } from "./sandbox.js";
import { DockerDemuxer, PidLine, wrapperScript } from "./streams.js";
import { supervise, withManyListeners } from "./supervise.js";

/** The part of the Docker Engine API this backend uses; `dockerodeEngine` implements it over dockerode. */
export interface DockerEngine {
  /** Creates a container running `cmd` as its main process, attaches to its output, starts it. */
  runContainer(options: {
    image: string;
    cmd: string[];
    env: string[];
    workdir?: string;
    network: string;
    stdin: boolean;
    labels: Record<string, string>;
    /** Read-only work: a read-only root and /dev, no capabilities, no new privileges (the caller also sets network "none"). */
    readOnly?: boolean;
  }): Promise<{ id: string; stream: Duplex }>;
  /** Exit code of a container that has stopped (waits for it); null when the engine does not know. */
  waitContainer(id: string): Promise<number | null>;
  killContainer(id: string, signal: "SIGTERM" | "SIGKILL"): Promise<void>;
  removeContainer(id: string): Promise<void>;
  /** Starts a process inside a running container and returns its multiplexed output. */
  exec(container: string, options: { cmd: string[]; env: string[]; workdir?: string; stdin: boolean }): Promise<{ id: string; stream: Duplex }>;
  /** Exit code of an exec; null when unknown (still running, or the engine does not know). */
  inspectExec(id: string): Promise<{ running: boolean; exitCode: number | null }>;
  /** Whether a container's root is read-only, and the mount points (volumes, binds, tmpfs) it may write to. */
  inspectContainer(name: string): Promise<{ readOnlyRoot: boolean; writableMounts: string[] }>;
}

/**
 * Paths of a read-only container that the kernel would otherwise let it
 * write: Docker's own /dev tmpfs and its submounts, and cgroupfs; the rest
 * are Docker's defaults (which this list replaces).
 */
export const READ_ONLY_PATHS = [
  "/proc/asound",
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
  "/dev",
  "/dev/mqueue",
  "/dev/pts",
  "/dev/shm",
  "/sys/fs/cgroup",
];

/** Adapts dockerode to `DockerEngine`. */
export function dockerodeEngine(docker: Docker = new Docker()): DockerEngine {
  return {
    async runContainer(o) {
      const container = await docker.createContainer({
        Image: o.image,
        Cmd: o.cmd,
        Env: o.env,
        ...(o.workdir ? { WorkingDir: o.workdir } : {}),
        Tty: false,
        AttachStdout: true,
        AttachStderr: true,
        AttachStdin: o.stdin,
        OpenStdin: o.stdin,
        StdinOnce: o.stdin,
        Labels: o.labels,
        // Init forwards TERM to the command (a shell as PID 1 would ignore it) and reaps orphans.
        HostConfig: {
          NetworkMode: o.network,
          Init: true,
          ...(o.readOnly
            ? { ReadonlyRootfs: true, ReadonlyPaths: READ_ONLY_PATHS, CapDrop: ["ALL"], SecurityOpt: ["no-new-privileges"], IpcMode: "none" }
            : {}),
        },
      });
      try {
        const stream = (await container.attach({ stream: true, stdout: true, stderr: true, stdin: o.stdin, hijack: o.stdin })) as unknown as Duplex;
        await container.start();
        return { id: container.id, stream };
      } catch (error) {
        await container.remove({ force: true }).catch(() => undefined);
        throw error;
      }
    },
    async waitContainer(id) {
      const state = (await docker.getContainer(id).wait()) as { StatusCode?: number };
      return typeof state.StatusCode === "number" ? state.StatusCode : null;
    },
    async killContainer(id, signal) {
      await docker.getContainer(id).kill({ signal });
    },
    async removeContainer(id) {
      await docker.getContainer(id).remove({ force: true });
    },
    async exec(container, o) {
      const exec = await docker.getContainer(container).exec({
        Cmd: o.cmd,
        Env: o.env,
        ...(o.workdir ? { WorkingDir: o.workdir } : {}),
        AttachStdout: true,
        AttachStderr: true,
        AttachStdin: o.stdin,
        Tty: false,
      });
      const stream = (await exec.start({ hijack: true, stdin: o.stdin })) as Duplex;
      return { id: exec.id, stream };
    },
    async inspectExec(id) {
      const info = await docker.getExec(id).inspect();
      return { running: Boolean(info.Running), exitCode: typeof info.ExitCode === "number" ? info.ExitCode : null };
    },
    async inspectContainer(name) {
      const info = await docker.getContainer(name).inspect();
      const writableMounts = [
        ...(info.Mounts ?? []).filter((m) => m.RW).map((m) => m.Destination),
        ...Object.keys((info.HostConfig as { Tmpfs?: Record<string, string> }).Tmpfs ?? {}),
      ];
      return { readOnlyRoot: Boolean(info.HostConfig.ReadonlyRootfs), writableMounts };
    },
  };
}

export interface DockerBackendOptions {
  /** A fresh container per command from this image (removed afterwards)… */
  image?: string;
  /** …or exec inside this running container. */
  container?: string;
  /** Network for fresh containers; "none" unless asked. */
  network?: string;
  killGraceMs?: number;
  engine?: DockerEngine;
  /** Read-only sandbox: `auto` (default: read-only containers; for an exec, a container that is read-only itself), `off` (none). */
  sandbox?: Exclude<SandboxMode, "require">;
}

const envList = (env: Record<string, string>) => Object.entries(env).map(([k, v]) => `${k}=${v}`);
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
const ignore = () => undefined;

/** Waits for a stream to finish delivering (end, close or error). */
function ended(stream: Readable | Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (stream.readableEnded || stream.destroyed) return resolve();
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.once("error", () => resolve());
  });
}

/**
 * Runs commands in Docker: a fresh container per command from `image` (the
 * command is its main process, so killing the container kills the command;
 * removed afterwards; no network unless asked), or an exec inside a running
 * `container` (its pid is captured, and cancel kills its process group
 * through a second exec, since the Engine API cannot kill an exec).
 */
export class DockerBackend implements Backend {
  readonly kind = "docker" as const;
  readonly #engine: DockerEngine;
  /** Aborted by close(); every running execution listens to it, so it may have many listeners. */
  readonly #closing = withManyListeners(new AbortController());
  readonly #sandbox = once(() => this.#probeSandbox());

  constructor(private readonly options: DockerBackendOptions) {
    if (!options.image === !options.container) throw new Error("The docker backend needs exactly one of image or container");
    this.#engine = options.engine ?? dockerodeEngine();
  }

  sandbox(): Promise<SandboxInfo> {
    return this.#sandbox();
  }

  async #probeSandbox(): Promise<SandboxInfo> {
    if (this.options.sandbox === "off") return noSandbox(SANDBOX_OFF);
    if (this.options.image) {
      return {
        kind: "docker",
        readOnly: true,
        detail: "docker: a fresh container with a read-only root and /dev, no network, no capabilities, no new privileges",
      };
    }
    return this.#execSandbox(this.options.container!);
  }

  /** An exec runs in the container as it was created: read-only only when its root and every mount are. */
  async #execSandbox(container: string): Promise<SandboxInfo> {
    let info: { readOnlyRoot: boolean; writableMounts: string[] };
    try {
      info = await this.#engine.inspectContainer(container);
    } catch (error) {
      return noSandbox(`docker: cannot inspect container ${container}: ${message(error)}`);
    }
    if (!info.readOnlyRoot) return noSandbox(`docker: container ${container} has a writable root (create it with --read-only for read-only work)`);
    if (info.writableMounts.length > 0) return noSandbox(`docker: container ${container} has writable mounts: ${info.writableMounts.join(", ")}`);
    return { kind: "docker", readOnly: true, detail: `docker: container ${container} has a read-only root and only read-only mounts` };
  }

  describe(): string {
    return this.options.image
      ? `docker: a fresh container per command from ${this.options.image} (network ${this.options.network ?? "none"})`
      : `docker: exec in container ${this.options.container}`;
  }

  start(spec: ExecSpec): Promise<Execution> {
    return this.options.image ? this.#startContainer(spec, this.options.image) : this.#startExec(spec, this.options.container!);
  }

  /** Read-only work needs the sandbox; without it the command is refused before anything starts. */
  async #requireSandbox(spec: ExecSpec, fresh: () => Promise<SandboxInfo>): Promise<void> {
    if (!spec.readOnly) return;
    const sandbox = await fresh();
    if (!sandbox.readOnly) throw new StartError(`read-only commands are refused on this runner: it has no read-only sandbox (${sandbox.detail})`);
  }

  async #startContainer(spec: ExecSpec, image: string): Promise<Execution> {
    const started = Date.now();
    await this.#requireSandbox(spec, () => this.#sandbox());
    let run: { id: string; stream: Duplex };
    try {
      // The container's environment is the image's (PATH, HOME as Docker sets it…) plus what the runner was given; never the runner's own.
      run = await this.#engine.runContainer({
        image,
        cmd: ["/bin/sh", "-c", spec.command],
        env: envList(spec.env),
        ...(spec.cwd ? { workdir: spec.cwd } : {}),
        // Read-only work sends nothing anywhere: no network, whatever the runner's --network says.
        network: spec.readOnly ? "none" : (this.options.network ?? "none"),
        stdin: Boolean(spec.stdin),
        labels: { "spool.runner": "1" },
        ...(spec.readOnly ? { readOnly: true } : {}),
      });
    } catch (error) {
      throw new StartError(`Cannot start a container from ${image}: ${message(error)}`);
    }
    const { id, stream } = run;
    if (spec.stdin) stream.end(spec.stdin);
    const demux = new DockerDemuxer();
    stream.pipe(demux);
    const control = supervise(
      spec,
      async (signal) => {
        await this.#engine.killContainer(id, signal).catch(ignore); // a container that already stopped is fine
      },
      { killGraceMs: this.options.killGraceMs, closing: this.#closing.signal },
    );
    const result = (async (): Promise<ExecResult> => {
      await ended(stream);
      // The exit code is read after the output has ended; a container that cannot be inspected is "unknown".
      const exitCode = await this.#engine.waitContainer(id).catch(() => null);
      control.done();
      await this.#engine.removeContainer(id).catch(ignore);
      return { exitCode, signal: null, durationMs: Date.now() - started, cancelled: control.cancelled, timedOut: control.timedOut };
    })();
    const describe = (): ExecutionTarget => ({ backend: "docker", container: id });
    return { stdout: demux.stdout, stderr: demux.stderr, result, describe, located: Promise.resolve(describe()) };
  }

  async #startExec(spec: ExecSpec, container: string): Promise<Execution> {
    const started = Date.now();
    // Checked again for each read-only command: the container may have been recreated since the runner attached.
    await this.#requireSandbox(spec, () => (this.options.sandbox === "off" ? this.#sandbox() : this.#execSandbox(container)));
    let run: { id: string; stream: Duplex };
    try {
      run = await this.#engine.exec(container, {
        cmd: ["/bin/sh", "-c", wrapperScript(spec.command, undefined, {})],
        env: envList(spec.env),
        ...(spec.cwd ? { workdir: spec.cwd } : {}),
        stdin: Boolean(spec.stdin),
      });
    } catch (error) {
      throw new StartError(`Cannot exec in container ${container}: ${message(error)}`);
    }
    const { id, stream } = run;
    if (spec.stdin) stream.end(spec.stdin);
    const demux = new DockerDemuxer();
    stream.pipe(demux);
    const pidLine = new PidLine();
    demux.stdout.pipe(pidLine);
    let pid: number | null = null;
    const describe = (): ExecutionTarget => ({ backend: "docker", container, ...(pid !== null ? { pid } : {}) });
    const located = pidLine.pid.then((p) => {
      pid = p;
      return describe();
    });
    const control = supervise(
      spec,
      async (signal) => {
        const target = pid;
        if (target === null) return;
        const sig = signal === "SIGKILL" ? "KILL" : "TERM";
        // The Engine API has no "kill exec": a second exec signals the command's process group (pid = pgid).
        const kill = await this.#engine
          .exec(container, { cmd: ["/bin/sh", "-c", `kill -${sig} -- -${target} 2>/dev/null || kill -${sig} ${target}`], env: [], stdin: false })
          .catch(() => null);
        if (kill) {
          kill.stream.resume();
          await ended(kill.stream);
        }
      },
      { killGraceMs: this.options.killGraceMs, closing: this.#closing.signal },
    );
    const result = (async (): Promise<ExecResult> => {
      await ended(stream);
      // After the output has ended, the exit code; null (unknown) when the engine has none. Never assumed 0.
      let info = await this.#engine.inspectExec(id).catch(() => ({ running: false, exitCode: null }));
      for (let i = 0; info.running && i < 20; i++) {
        await new Promise((r) => setTimeout(r, 25));
        info = await this.#engine.inspectExec(id).catch(() => ({ running: false, exitCode: null }));
      }
      control.done();
      return { exitCode: info.exitCode, signal: null, durationMs: Date.now() - started, cancelled: control.cancelled, timedOut: control.timedOut };
    })();
    return { stdout: pidLine, stderr: demux.stderr, result, describe, located };
  }

  async close(): Promise<void> {
    this.#closing.abort();
  }
}
