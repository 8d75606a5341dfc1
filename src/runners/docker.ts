import { realpathSync } from "node:fs";
import { posix, relative } from "node:path";
import { type Duplex, PassThrough, type Readable } from "node:stream";
import Docker from "dockerode";
import type { ControlSignal, TtySize } from "../protocol/runner.js";
import { type Backend, BackendUnavailable, type ExecResult, type ExecSpec, type Execution, type ExecutionTarget, firstLine, StartError } from "./backend.js";
import { signalName, streamControl, TTY_TERM } from "./control.js";
import { hiddenPaths, noSandbox, once, SANDBOX_OFF, type SandboxInfo, type SandboxMode, sandboxOf, sandboxResult, within } from "./sandbox.js";
import { shellScript } from "./shell.js";
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
    /** Run the command under a terminal: its output comes raw (not multiplexed), stdout and stderr as one. */
    tty?: boolean;
    labels: Record<string, string>;
    /** Read-only work: a read-only root and /dev, no capabilities, no new privileges (the caller also sets network "none"). */
    readOnly?: boolean;
    /** workspace-write: the same read-only root, no capabilities, no new privileges, with a private writable /tmp (the project is the one writable mount). */
    workspaceWrite?: boolean;
    /** Host directories bound into the container. */
    mounts?: BindMount[];
    /** Empty read-only tmpfs mounts over these container paths (the server's state inside a mounted project). */
    covers?: string[];
  }): Promise<{ id: string; stream: Duplex }>;
  /** Exit code of a container that has stopped (waits for it); null when the engine does not know. */
  waitContainer(id: string): Promise<number | null>;
  /** Sends a signal to the container's main process (docker-init, which passes it on to the command). */
  killContainer(id: string, signal: string): Promise<void>;
  /** Resizes the terminal of a container (or of an exec, `exec: true`) that runs under one. */
  resize(id: string, size: TtySize, exec: boolean): Promise<void>;
  removeContainer(id: string): Promise<void>;
  /** Starts a process inside a running container and returns its multiplexed output. */
  exec(container: string, options: { cmd: string[]; env: string[]; workdir?: string; stdin: boolean; tty?: boolean }): Promise<{ id: string; stream: Duplex }>;
  /** Exit code of an exec; null when unknown (still running, or the engine does not know). */
  inspectExec(id: string): Promise<{ running: boolean; exitCode: number | null }>;
  /** Whether a container's root is read-only, and the mount points (volumes, binds, tmpfs) it may write to. */
  /** `networkMode`: HostConfig.NetworkMode (`none`, `bridge`, `default`, `host`, `container:…`). */
  inspectContainer(name: string): Promise<{ readOnlyRoot: boolean; writableMounts: string[]; networkMode: string; running: boolean; status: string }>;
  /** Resolves when the engine answers; rejects saying where it was looked for and why it did not answer. */
  ping(): Promise<void>;
  /** Whether the engine has the image (false only when it says "no such image"). */
  hasImage(image: string): Promise<boolean>;
  /** Pulls the image; rejects with the registry's or engine's reason. */
  pullImage(image: string): Promise<void>;
}

export interface BindMount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** The engine's own words for an API error (its JSON `message`), else the error's first line. */
export function engineMessage(error: unknown): string {
  const json = (error as { json?: { message?: unknown } } | null)?.json;
  if (typeof json?.message === "string") return json.message.trim();
  // docker-modem's own wording: "(HTTP code 500) server error - <the engine's message>".
  return firstLine(error).replace(/^\(HTTP code \d+\) [^-]*- /, "");
}

const statusOf = (error: unknown) => (error as { statusCode?: number } | null)?.statusCode;

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
        Tty: Boolean(o.tty),
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
          // Mounts (not Binds): a missing source is an error, where Binds would create it as an empty directory.
          ...(o.mounts?.length ? { Mounts: o.mounts.map((m) => ({ Type: "bind" as const, Source: m.source, Target: m.target, ReadOnly: m.readOnly })) } : {}),
          ...(o.readOnly || o.workspaceWrite
            ? { ReadonlyRootfs: true, ReadonlyPaths: READ_ONLY_PATHS, CapDrop: ["ALL"], SecurityOpt: ["no-new-privileges"], IpcMode: "none" }
            : {}),
          ...(o.workspaceWrite || o.covers?.length
            ? {
                Tmpfs: {
                  ...(o.workspaceWrite ? { "/tmp": "rw,nosuid,nodev,mode=1777" } : {}),
                  ...Object.fromEntries((o.covers ?? []).map((path) => [path, "ro,nosuid,nodev,mode=755"])),
                },
              }
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
    async resize(id, { cols, rows }, exec) {
      await (exec ? docker.getExec(id) : docker.getContainer(id)).resize({ h: rows, w: cols });
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
        Tty: Boolean(o.tty),
      });
      const stream = (await exec.start({ hijack: true, stdin: o.stdin, Tty: Boolean(o.tty) })) as Duplex;
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
      return {
        readOnlyRoot: Boolean(info.HostConfig.ReadonlyRootfs),
        writableMounts,
        networkMode: info.HostConfig.NetworkMode ?? "default",
        running: Boolean(info.State?.Running),
        status: info.State?.Status ?? "unknown",
      };
    },
    async ping() {
      const { socketPath, host, port } = docker.modem as { socketPath?: string; host?: string; port?: number | string };
      const address = socketPath ? String(socketPath) : `${host ?? "?"}:${port ?? "?"}`;
      try {
        await docker.ping();
      } catch (error) {
        throw new Error(`${address}: ${engineMessage(error)}`);
      }
    },
    async hasImage(image) {
      try {
        await docker.getImage(image).inspect();
        return true;
      } catch (error) {
        if (statusOf(error) === 404) return false;
        throw error;
      }
    },
    async pullImage(image) {
      const stream = (await docker.pull(image)) as Readable;
      // The engine reports a failed pull inside the progress stream ({"error": …}), after an HTTP 200.
      let failure: string | null = null;
      let partial = "";
      for await (const chunk of stream) {
        const lines = (partial + String(chunk)).split("\n");
        partial = (lines.pop() ?? "").slice(-65_536);
        for (const line of lines) {
          if (!line.trim()) continue;
          try {
            const event = JSON.parse(line) as { error?: unknown; errorDetail?: { message?: unknown } };
            if (event.error !== undefined) failure = String(event.errorDetail?.message ?? event.error);
          } catch {
            // not a JSON line: progress noise
          }
        }
      }
      if (failure) throw new Error(failure);
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
  /**
   * Fresh containers get the project root (`ExecSpec.project`) bind-mounted, read-write for commands and read-only for
   * read-only work, and start in the command's directory there. Commands without `project` are then refused.
   */
  mountProject?: boolean;
  /** Where the root is mounted in the container; default the same path as on the host. */
  mountAt?: string;
}

const envList = (env: Record<string, string>) => Object.entries(env).map(([k, v]) => `${k}=${v}`);
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
const ignore = () => undefined;

/** The variables of a command, with TERM naming a capable terminal when it runs under one (the proposal's env may name another). */
const withTerm = (spec: ExecSpec): Record<string, string> => (spec.tty ? { TERM: TTY_TERM, ...spec.env } : spec.env);

/** A terminal's output comes raw, stdout and stderr as one; otherwise it is multiplexed and split. */
function outputStreams(stream: Duplex, tty: boolean): { stdout: Readable; stderr: Readable } {
  if (!tty) {
    const demux = new DockerDemuxer();
    stream.pipe(demux);
    return { stdout: demux.stdout, stderr: demux.stderr };
  }
  const stdout = new PassThrough({ highWaterMark: 64 * 1024 });
  const stderr = new PassThrough();
  stderr.end();
  stream.pipe(stdout);
  // A hijacked connection may close without an end: the output ends with it.
  stream.once("close", () => {
    if (!stdout.writableEnded) stdout.end();
  });
  return { stdout, stderr };
}

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
      const writable = this.options.mountProject ? "the project the one writable mount" : "no project mounted";
      return {
        kind: "docker",
        readOnly: true,
        detail: `docker: read-only: a fresh container with a read-only root and /dev, no network, no capabilities, no new privileges; workspace-write: the same with ${writable}, a private /tmp and the runner's network`,
        modes: ["read-only", "workspace-write", "full"],
      };
    }
    return this.#execSandbox(this.options.container!);
  }

  /**
   * An exec runs in the container as it was created: read-only only when its root and every mount are, and it has
   * no network (read-only promises none; an exec keeps the container's).
   */
  async #execSandbox(container: string): Promise<SandboxInfo> {
    let info: { readOnlyRoot: boolean; writableMounts: string[]; networkMode: string };
    try {
      info = await this.#engine.inspectContainer(container);
    } catch (error) {
      return noSandbox(`docker: cannot inspect container ${container}: ${message(error)}`);
    }
    if (!info.readOnlyRoot) return noSandbox(`docker: container ${container} has a writable root (create it with --read-only for read-only work)`);
    if (info.writableMounts.length > 0) return noSandbox(`docker: container ${container} has writable mounts: ${info.writableMounts.join(", ")}`);
    if (info.networkMode !== "none") {
      return noSandbox(
        `docker: container ${container} has a network (network mode ${info.networkMode}), which an exec keeps, and read-only work has none (create it with --network none for read-only work)`,
      );
    }
    return {
      kind: "docker",
      readOnly: true,
      detail: `docker: container ${container} has a read-only root, only read-only mounts and no network`,
      modes: ["read-only", "full"],
    };
  }

  describe(): string {
    if (!this.options.image) return `docker: exec in container ${this.options.container}`;
    const mount = this.options.mountProject ? `, project root mounted${this.options.mountAt ? ` at ${this.options.mountAt}` : ""}` : "";
    return `docker: a fresh container per command from ${this.options.image} (network ${this.options.network ?? "none"}${mount})`;
  }

  /** The engine answers; the image is there (pulled when missing), or the container exists and runs. */
  async check(progress: (line: string) => void = () => undefined): Promise<void> {
    try {
      await this.#engine.ping();
    } catch (error) {
      throw new BackendUnavailable(`docker: the engine does not answer (${firstLine(error)}) — start Docker, or point DOCKER_HOST at it`);
    }
    const { image, container } = this.options;
    if (image) {
      let present: boolean;
      try {
        present = await this.#engine.hasImage(image);
      } catch (error) {
        throw new BackendUnavailable(`docker: cannot look up image ${image}: ${engineMessage(error)}`);
      }
      if (present) return;
      progress(`docker: image ${image} is not here; pulling it`);
      try {
        await this.#engine.pullImage(image);
        if (!(await this.#engine.hasImage(image))) throw new Error("the engine reported no error, yet has no such image");
      } catch (error) {
        throw new BackendUnavailable(
          `docker: image ${image} not found and could not be pulled: ${engineMessage(error)} — check --image, or build or pull it first`,
        );
      }
      progress(`docker: pulled ${image}`);
      return;
    }
    let state: { running: boolean; status: string };
    try {
      state = await this.#engine.inspectContainer(container!);
    } catch (error) {
      if (statusOf(error) === 404)
        throw new BackendUnavailable(`docker: container ${container} not found — start it first, or pass --image to use fresh containers`);
      throw new BackendUnavailable(`docker: cannot inspect container ${container}: ${engineMessage(error)}`);
    }
    if (!state.running) throw new BackendUnavailable(`docker: container ${container} is ${state.status}, not running — start it (docker start ${container})`);
  }

  /** The project root's bind mount for a fresh container, and the directory to start in; null when nothing is mounted. */
  #mount(spec: ExecSpec): { mounts: BindMount[]; covers: string[]; workdir: string } | null {
    if (!this.options.mountProject) return null;
    if (!spec.project) {
      throw new StartError(
        `the command's directory (${spec.cwd ?? "none"}) is outside the project root, which is all this runner mounts — run it inside the root, or start the runner with --no-mount`,
      );
    }
    const target = this.options.mountAt ?? spec.project.root;
    const sandbox = sandboxOf(spec);
    const mounts: BindMount[] = [{ source: spec.project.root, target, readOnly: sandbox?.mode === "read-only" }];
    const covers: string[] = [];
    // The server's state inside the mounted project (a project rooted in the server's home): covered, as bubblewrap does.
    if (sandbox?.hide?.length) {
      let root: string;
      try {
        root = realpathSync(spec.project.root);
      } catch {
        root = spec.project.root;
      }
      const { hideFiles, hideDirs } = hiddenPaths(sandbox.hide);
      const inside = (path: string) => path !== root && within(path, root);
      for (const file of hideFiles.filter(inside)) mounts.push({ source: "/dev/null", target: posix.join(target, relative(root, file)), readOnly: true });
      for (const dir of hideDirs.filter(inside)) covers.push(posix.join(target, relative(root, dir)));
    }
    return { mounts, covers, workdir: spec.project.cwd ? posix.join(target, spec.project.cwd) : target };
  }

  start(spec: ExecSpec): Promise<Execution> {
    return this.options.image ? this.#startContainer(spec, this.options.image) : this.#startExec(spec, this.options.container!);
  }

  /** Sandboxed work needs the mode; without it the command is refused before anything starts. */
  async #requireSandbox(spec: ExecSpec, fresh: () => Promise<SandboxInfo>): Promise<void> {
    const wanted = sandboxOf(spec);
    if (!wanted) return;
    const sandbox = await fresh();
    if (!(sandbox.modes ?? []).includes(wanted.mode))
      throw new StartError(`${wanted.mode} commands are refused on this runner: it has no ${wanted.mode} sandbox (${sandbox.detail})`);
  }

  async #startContainer(spec: ExecSpec, image: string): Promise<Execution> {
    const started = Date.now();
    await this.#requireSandbox(spec, () => this.#sandbox());
    const mode = sandboxOf(spec)?.mode;
    const mounted = this.#mount(spec);
    const workdir = mounted ? mounted.workdir : spec.cwd;
    const network = mode === "read-only" || (mode === "workspace-write" && spec.sandbox?.network === false) ? "none" : (this.options.network ?? "none");
    const stdin = Boolean(spec.stdin || spec.interactive || spec.tty);
    let run: { id: string; stream: Duplex };
    try {
      // The container's environment is the image's (PATH, HOME as Docker sets it…) plus what the runner was given; never the runner's own.
      run = await this.#engine.runContainer({
        image,
        cmd: ["/bin/sh", "-c", shellScript(spec.command)],
        env: envList(withTerm(spec)),
        ...(workdir ? { workdir } : {}),
        ...(mounted ? { mounts: mounted.mounts, ...(mounted.covers.length ? { covers: mounted.covers } : {}) } : {}),
        // Read-only work sends nothing anywhere: no network, whatever the runner's --network says; workspace-write keeps it unless cut.
        network,
        stdin,
        ...(spec.tty ? { tty: true } : {}),
        labels: { "spool.runner": "1" },
        ...(mode === "read-only" ? { readOnly: true } : {}),
        ...(mode === "workspace-write" ? { workspaceWrite: true } : {}),
      });
    } catch (error) {
      throw new StartError(`Cannot start a container from ${image}: ${engineMessage(error)}`);
    }
    const { id, stream } = run;
    if (spec.stdin) stream.end(spec.stdin);
    // The Engine (before API 1.42) cannot create a terminal of a given size: it is set as soon as the container runs.
    if (spec.tty) await this.#engine.resize(id, spec.tty, false).catch(ignore);
    const output = outputStreams(stream, Boolean(spec.tty));
    const control = supervise(
      spec,
      async (signal) => {
        await this.#engine.killContainer(id, signal).catch(ignore); // a container that already stopped is fine
      },
      { killGraceMs: this.options.killGraceMs, closing: this.#closing.signal },
    );
    const interactive =
      (spec.interactive || spec.tty) && !spec.stdin
        ? streamControl(
            stream,
            {
              signal: (name) => this.#signalContainerGroup(id, name),
              ...(spec.tty ? { resize: (size: TtySize) => this.#engine.resize(id, size, false) } : {}),
            },
            { tty: Boolean(spec.tty) },
          )
        : undefined;
    const result = (async (): Promise<ExecResult> => {
      await ended(stream);
      // The exit code is read after the output has ended; a container that cannot be inspected is "unknown".
      const exitCode = await this.#engine.waitContainer(id).catch(() => null);
      control.done();
      await this.#engine.removeContainer(id).catch(ignore);
      // The engine gives a command killed by signal N (docker-init exits so) as status 128+N: told as that signal.
      return sandboxResult({ exitCode, signal: null, durationMs: Date.now() - started, cancelled: control.cancelled, timedOut: control.timedOut });
    })();
    const describe = (): ExecutionTarget => ({ backend: "docker", container: id });
    return { ...output, result, describe, located: Promise.resolve(describe()), ...(interactive ? { control: interactive } : {}) };
  }

  /**
   * stream/signal in a fresh container: to the command's process group, as on the other backends. docker-init
   * passes a signal to its child alone (a shell waiting for a program would get it, the program not), so a second
   * exec signals the group of each child of PID 1 (docker-init puts its child in a group of its own); where that
   * cannot be done (no /proc children list, no exec), `docker kill --signal` as before.
   */
  async #signalContainerGroup(id: string, name: ControlSignal): Promise<void> {
    const script = `c=$(cat /proc/1/task/1/children 2>/dev/null) && [ -n "$c" ] && for p in $c; do kill -${name} -$p 2>/dev/null || kill -${name} $p; done`;
    const kill = await this.#engine.exec(id, { cmd: ["/bin/sh", "-c", script], env: [], stdin: false }).catch(() => null);
    if (kill) {
      kill.stream.resume();
      await ended(kill.stream);
      const { exitCode } = await this.#engine.inspectExec(kill.id).catch(() => ({ exitCode: null }));
      if (exitCode === 0) return;
    }
    await this.#engine.killContainer(id, signalName(name)).catch(ignore);
  }

  async #startExec(spec: ExecSpec, container: string): Promise<Execution> {
    const started = Date.now();
    // Checked again for each read-only command: the container may have been recreated since the runner attached.
    await this.#requireSandbox(spec, () => (this.options.sandbox === "off" ? this.#sandbox() : this.#execSandbox(container)));
    const stdin = Boolean(spec.stdin || spec.interactive || spec.tty);
    let run: { id: string; stream: Duplex };
    try {
      run = await this.#engine.exec(container, {
        cmd: ["/bin/sh", "-c", wrapperScript(shellScript(spec.command), undefined, {})],
        env: envList(withTerm(spec)),
        ...(spec.cwd ? { workdir: spec.cwd } : {}),
        stdin,
        ...(spec.tty ? { tty: true } : {}),
      });
    } catch (error) {
      throw new StartError(`Cannot exec in container ${container}: ${message(error)}`);
    }
    const { id, stream } = run;
    if (spec.stdin) stream.end(spec.stdin);
    if (spec.tty) await this.#engine.resize(id, spec.tty, true).catch(ignore);
    const output = outputStreams(stream, Boolean(spec.tty));
    const pidLine = new PidLine();
    output.stdout.pipe(pidLine);
    let pid: number | null = null;
    const describe = (): ExecutionTarget => ({ backend: "docker", container, ...(pid !== null ? { pid } : {}) });
    const located = pidLine.pid.then((p) => {
      pid = p;
      return describe();
    });
    // The Engine API has no "kill exec": a second exec signals the command's process group (pid = pgid). No `--`:
    // busybox's kill refuses it, yet signals the group, and the fallback would then signal the process again.
    const signalGroup = async (sig: string) => {
      const target = pid ?? (await located).pid;
      if (target === undefined) return;
      const kill = await this.#engine
        .exec(container, { cmd: ["/bin/sh", "-c", `kill -${sig} -${target} 2>/dev/null || kill -${sig} ${target}`], env: [], stdin: false })
        .catch(() => null);
      if (kill) {
        kill.stream.resume();
        await ended(kill.stream);
      }
    };
    const control = supervise(spec, (signal) => (pid === null ? undefined : signalGroup(signal === "SIGKILL" ? "KILL" : "TERM")), {
      killGraceMs: this.options.killGraceMs,
      closing: this.#closing.signal,
    });
    const interactive =
      (spec.interactive || spec.tty) && !spec.stdin
        ? streamControl(
            stream,
            { signal: signalGroup, ...(spec.tty ? { resize: (size: TtySize) => this.#engine.resize(id, size, true) } : {}) },
            { tty: Boolean(spec.tty) },
          )
        : undefined;
    const result = (async (): Promise<ExecResult> => {
      await ended(stream);
      // After the output has ended, the exit code; null (unknown) when the engine has none. Never assumed 0.
      let info = await this.#engine.inspectExec(id).catch(() => ({ running: false, exitCode: null }));
      for (let i = 0; info.running && i < 20; i++) {
        await new Promise((r) => setTimeout(r, 25));
        info = await this.#engine.inspectExec(id).catch(() => ({ running: false, exitCode: null }));
      }
      control.done();
      // A command killed by signal N has ExitCode 128+N: told as that signal.
      return sandboxResult({
        exitCode: info.exitCode,
        signal: null,
        durationMs: Date.now() - started,
        cancelled: control.cancelled,
        timedOut: control.timedOut,
      });
    })();
    return { stdout: pidLine, stderr: output.stderr, result, describe, located, ...(interactive ? { control: interactive } : {}) };
  }

  async close(): Promise<void> {
    this.#closing.abort();
  }
}
