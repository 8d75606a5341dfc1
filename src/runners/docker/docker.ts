import { posix } from "node:path";
import type { Duplex } from "node:stream";
import { ViewRecord } from "../../home/views.js";
import type { ContainerInfo, ControlSignal, TtySize } from "../../protocol/runner.js";
import type { NetworkKind } from "../../protocol/sandbox.js";
import { type Backend, BackendUnavailable, type ExecResult, type ExecSpec, type Execution, type ExecutionTarget, firstLine, StartError } from "../backend.js";
import { signalName, streamControl, TTY_TERM } from "../control.js";
import { untrustingNewRepositories } from "../new-repos.js";
import { egressUnavailable, noSandbox, once, SANDBOX_OFF, type SandboxInfo, type SandboxMode, sandboxOf, sandboxResult } from "../sandbox/sandbox.js";
import { shellScript } from "../shell.js";
import { PidLine, wrapperScript } from "../streams.js";
import { supervise, withManyListeners } from "../supervise.js";
import { type DockerEgress, egressSupport, startDockerEgress } from "./egress.js";
import { type DockerEngine, dockerodeEngine, engineMessage, statusOf } from "./engine.js";
import { containerMounts } from "./mounts.js";
import { dockerSeccompProfile } from "./seccomp.js";
import { ended, outputStreams } from "./streams.js";
import { diesWithRunner } from "./watcher.js";

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
  /** Fresh containers get the project root (`ExecSpec.project`) mounted (read-only for read-only work), starting in the command's directory there; commands without `project` are refused. */
  mountProject?: boolean;
  /** Where the root is mounted in the container; default the same path as on the host. */
  mountAt?: string;
  /** Names the egress proxy of an `allowlist` command resolves to these addresses before asking DNS (its hosts file). */
  egressHosts?: Readonly<Record<string, string>>;
  /** The password file whose login users' homes no sandboxed project root may be or hold (this machine's engine); default /etc/passwd. */
  passwd?: string;
}

const envList = (env: Record<string, string>) => Object.entries(env).map(([k, v]) => `${k}=${v}`);
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
const ignore = () => undefined;

/** The variables of a command, with TERM naming a capable terminal when it runs under one (the proposal's env may name another). */
const withTerm = (spec: ExecSpec): Record<string, string> => (spec.tty ? { TERM: TTY_TERM, ...spec.env } : spec.env);

/**
 * Runs commands in Docker: a fresh container per command from `image` (the command is its main process, so killing the
 * container kills the command; removed afterwards; no network unless asked), or an exec inside a running `container`
 * (its pid is captured, and cancel kills its process group through a second exec, since the Engine API cannot kill an exec).
 */
export class DockerBackend implements Backend {
  readonly kind = "docker" as const;
  readonly #engine: DockerEngine;
  /** Aborted by close(); every running execution listens to it, so it may have many listeners. */
  readonly #closing = withManyListeners(new AbortController());
  readonly #sandbox = once(() => this.#probeSandbox());
  /** Where a command starts when the project is not mounted: the image's (or the container's) WORKDIR, read by check(). */
  #workingDir: string | undefined;

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
      const egress = egressSupport();
      const allowlist =
        egress === true ? "; network allowlist: no network, an egress proxy outside the container its one way out" : `; no network allowlist (${egress})`;
      return {
        kind: "docker",
        readOnly: true,
        detail: `docker: read-only: a fresh container with a read-only root and /dev, no network, no capabilities, no new privileges; workspace-write: the same with ${writable}, a private /tmp and the runner's network${allowlist}; nothing of the runner's machine but the project and the configured paths`,
        modes: ["read-only", "workspace-write", "full"],
        network: dockerNetwork(this.options.network),
        ...(egress === true ? { egress: true } : {}),
        // What a command sees: the image (its own programs and home), and from the runner's machine only what is mounted.
        view: { system: [], image: this.options.image.slice(0, 500), home: null, toolchains: [], ...(this.options.mountProject ? {} : { project: false }) },
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
      network: "none",
    };
  }

  /**
   * What holds each command's processes (SPEC §7 "Stopped means stopped"): a fresh container is the command's own
   * PID namespace and cgroup, and killing it ends everything in it; with the engine of DOCKER_HOST, a watcher
   * removes it when the runner process dies (watcher.ts). An exec shares its container with whatever else
   * runs there, and outlives a runner that is killed.
   */
  async container(): Promise<ContainerInfo> {
    const { image, container, engine } = this.options;
    if (image) {
      const watched = !engine;
      return {
        kind: "pid-namespace",
        diesWithRunner: watched,
        detail: `every command in a fresh container of its own from ${image} (its PID namespace and cgroup: a cancel or time limit kills the container and every process in it); ${
          watched ? "a watcher removes the runner's containers when the runner process ends" : "a runner that is killed leaves its containers running"
        }`,
      };
    }
    return {
      kind: "none",
      diesWithRunner: false,
      detail: `no container per command: commands exec in container ${container}, where a process that leaves the command's process group escapes a cancel, and commands may outlive a runner that is killed`,
    };
  }

  /**
   * Where the project root's commands run when that is not the root's own path: with the project unmounted (an exec in
   * a container, or --no-mount), the WORKDIR a command starts in, with a proposal's cwd under it. Known after check().
   */
  async root(): Promise<string | undefined> {
    return this.options.image && this.options.mountProject ? undefined : this.#workingDir;
  }

  /** An unmounted command's directory: a relative cwd (the proposal's, under the project root) is taken under the WORKDIR. */
  #unmountedCwd(cwd: string | undefined): string | undefined {
    if (cwd === undefined || posix.isAbsolute(cwd) || this.#workingDir === undefined) return cwd;
    return posix.join(this.#workingDir, cwd);
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
      if (present) return this.#readWorkingDir(() => this.#engine.imageWorkingDir(image), `image ${image}`);
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
      return this.#readWorkingDir(() => this.#engine.imageWorkingDir(image), `image ${image}`);
    }
    let state: { running: boolean; status: string; workingDir: string };
    try {
      state = await this.#engine.inspectContainer(container!);
    } catch (error) {
      if (statusOf(error) === 404)
        throw new BackendUnavailable(`docker: container ${container} not found — start it first, or pass --image to use fresh containers`);
      throw new BackendUnavailable(`docker: cannot inspect container ${container}: ${engineMessage(error)}`);
    }
    if (!state.running) throw new BackendUnavailable(`docker: container ${container} is ${state.status}, not running — start it (docker start ${container})`);
    this.#workingDir = state.workingDir;
  }

  /** Reads where an unmounted command starts, which every proposal's cwd shows (root()); a mounted project needs none. */
  async #readWorkingDir(read: () => Promise<string>, what: string): Promise<void> {
    if (this.options.mountProject) return;
    try {
      this.#workingDir = await read();
    } catch (error) {
      throw new BackendUnavailable(`docker: cannot read the WORKDIR of ${what}: ${engineMessage(error)}`);
    }
  }

  start(spec: ExecSpec): Promise<Execution> {
    return this.options.image ? this.#startContainer(spec, this.options.image) : this.#startExec(spec, this.options.container!);
  }

  /** Sandboxed work needs the mode; without it the command is refused before anything starts. */
  async #requireSandbox(spec: ExecSpec, fresh: () => Promise<SandboxInfo>): Promise<void> {
    const wanted = sandboxOf(spec);
    if (!wanted) return;
    if (wanted.egress && !this.options.image)
      throw new StartError(egressUnavailable("docker", `commands exec in container ${this.options.container}, which keeps its own network`));
    const sandbox = await fresh();
    if (wanted.egress && !sandbox.egress) throw new StartError(egressUnavailable("docker", firstLine(egressSupport())));
    if (!(sandbox.modes ?? []).includes(wanted.mode))
      throw new StartError(`${wanted.mode} commands are refused on this runner: it has no ${wanted.mode} sandbox (${sandbox.detail})`);
  }

  /** A fresh container, its sandboxed mounts recorded as a view until it has ended or failed to start (home/views.ts). */
  async #startContainer(spec: ExecSpec, image: string): Promise<Execution> {
    const view = new ViewRecord();
    try {
      const execution = await this.#startContainerSeen(spec, image, view);
      return { ...execution, result: execution.result.finally(view.release) };
    } catch (error) {
      view.release();
      throw error;
    }
  }

  async #startContainerSeen(spec: ExecSpec, image: string, view: ViewRecord): Promise<Execution> {
    const started = Date.now();
    await this.#requireSandbox(spec, () => this.#sandbox());
    const mode = sandboxOf(spec)?.mode;
    const mounted = await containerMounts(spec, view, this.options, (cwd) => this.#unmountedCwd(cwd));
    const workdir = mounted.workdir;
    // Network mode allowlist: no network, and the egress proxy outside as its one way out (egress.ts).
    const allow = mode === "workspace-write" ? sandboxOf(spec)?.egress?.allow : undefined;
    const egress = allow ? await startDockerEgress({ allow, ...(this.options.egressHosts ? { hosts: this.options.egressHosts } : {}) }) : null;
    const cut = mode === "read-only" || (mode === "workspace-write" && spec.sandbox?.network === false) || egress !== null;
    const network = cut ? "none" : (this.options.network ?? "none");
    const mounts = [...mounted.mounts, ...(egress ? [egress.mount] : [])];
    const stdin = Boolean(spec.stdin || spec.interactive || spec.tty);
    let run: { id: string; stream: Duplex };
    try {
      // The container's environment is the image's (PATH, HOME as Docker sets it…) plus what the runner was given; never the runner's own.
      run = await this.#engine.runContainer({
        image,
        cmd: egress ? egress.cmd(mounted.check + shellScript(spec.command)) : ["/bin/sh", "-c", mounted.check + shellScript(spec.command)],
        env: envList({ ...withTerm(spec), ...egress?.env }),
        ...(workdir ? { workdir } : {}),
        ...(mounts.length ? { mounts } : {}),
        // Read-only work sends nothing anywhere: no network, whatever the runner's --network says; workspace-write keeps it unless cut.
        network,
        stdin,
        ...(spec.tty ? { tty: true } : {}),
        // With the engine of DOCKER_HOST, a watcher removes the container if this runner process dies (watcher.ts).
        labels: { "spool.runner": "1", ...(this.options.engine ? {} : diesWithRunner()) },
        ...(mode === "read-only" ? { readOnly: true } : {}),
        ...(mode === "workspace-write" ? { workspaceWrite: true } : {}),
        // No setuid file left in the project, no io_uring; read-only creates no Unix socket (seccomp.ts).
        ...(mode ? { seccomp: dockerSeccompProfile({ refuseUnixSockets: mode === "read-only" }) } : {}),
      });
    } catch (error) {
      await egress?.close();
      throw new StartError(`Cannot start a container from ${image}: ${engineMessage(error)}`);
    }
    const { id, stream } = run;
    if (egress) await this.#openEgress(egress, id, stream);
    if (spec.stdin) stream.end(spec.stdin);
    // The Engine (before API 1.42) cannot create a terminal of a given size: it is set as soon as the container runs.
    if (spec.tty) await this.#engine.resize(id, spec.tty, false).catch(ignore);
    const streams = outputStreams(stream, Boolean(spec.tty));
    const output = egress ? { stdout: streams.stdout, stderr: egress.stderr(streams.stderr) } : streams;
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
      // What the egress proxy allowed and refused (its summary, once it stopped), for the record.
      const reached = egress ? { egress: await egress.close() } : {};
      // The engine gives a command killed by signal N (docker-init exits so) as status 128+N: told as that signal.
      const outcome = sandboxResult({ exitCode, signal: null, durationMs: Date.now() - started, cancelled: control.cancelled, timedOut: control.timedOut });
      return { ...outcome, ...reached };
    })();
    const describe = (): ExecutionTarget => ({ backend: "docker", container: id });
    const execution = { ...output, result, describe, located: Promise.resolve(describe()), ...(interactive ? { control: interactive } : {}) };
    return untrustingNewRepositories(execution, mounted.repos);
  }

  /** The forwarder in the container's network namespace, then the command starts; on failure the container and the proxy go. */
  async #openEgress(egress: DockerEgress, id: string, stream: Duplex): Promise<void> {
    try {
      const { pid } = await this.#engine.inspectContainer(id);
      await egress.open(pid);
    } catch (error) {
      stream.destroy();
      await this.#engine.removeContainer(id).catch(ignore);
      await egress.close();
      throw error instanceof StartError ? error : new StartError(`Cannot start the egress forwarder: ${message(error)}`);
    }
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
        // The shell changes to the directory, not the engine: a directory the container lacks is then the shell's
        // error on stderr (`can't cd to …`), where the engine's exec fails with 126 and says nothing.
        cmd: ["/bin/sh", "-c", wrapperScript(shellScript(spec.command), this.#unmountedCwd(spec.cwd), {})],
        env: envList(withTerm(spec)),
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

/** What a container's network mode gives a command: none, the host's (shared), or a network namespace of the container's own. */
const dockerNetwork = (mode = "none"): NetworkKind => (mode === "none" ? "none" : mode === "host" ? "shared" : "own");
