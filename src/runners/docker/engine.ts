import type { Duplex, Readable } from "node:stream";
import Docker from "dockerode";
import type { TtySize } from "../../protocol/runner.js";
import { firstLine } from "../backend.js";

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
    /** The seccomp profile (JSON, seccomp.ts) in place of Docker's default; read-only and workspace-write set one. */
    seccomp?: string;
    /** Host directories bound into the container. */
    mounts?: BindMount[];
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
  /** `networkMode`: HostConfig.NetworkMode (`none`, `bridge`, `default`, `host`, `container:…`); `pid`: its PID 1 on the engine's machine, while it runs. */
  /** `workingDir`: where an exec starts without one, its Config.WorkingDir (`/` when the image sets none). */
  inspectContainer(name: string): Promise<{
    readOnlyRoot: boolean;
    writableMounts: string[];
    networkMode: string;
    running: boolean;
    status: string;
    pid?: number;
    workingDir: string;
  }>;
  /** Resolves when the engine answers; rejects saying where it was looked for and why it did not answer. */
  ping(): Promise<void>;
  /** Whether the engine has the image (false only when it says "no such image"). */
  hasImage(image: string): Promise<boolean>;
  /** Where a container of the image starts: its WORKDIR (`/` when it sets none). */
  imageWorkingDir(image: string): Promise<string>;
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

/** An engine error's HTTP status, when it has one. */
export const statusOf = (error: unknown) => (error as { statusCode?: number } | null)?.statusCode;

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
      const container = await docker.createContainer(createOptions(o));
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
      return containerFacts(info);
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
    async imageWorkingDir(image) {
      const info = await docker.getImage(image).inspect();
      return info.Config?.WorkingDir || "/";
    },
    async pullImage(image) {
      const stream = (await docker.pull(image)) as Readable;
      const failure = await pullFailure(stream);
      if (failure) throw new Error(failure);
    },
  };
}

type ContainerOptions = Parameters<DockerEngine["runContainer"]>[0];

/** The engine's create options for a container running `o.cmd`: its sandbox (read-only, workspace-write), mounts and no log. */
function createOptions(o: ContainerOptions): Docker.ContainerCreateOptions {
  return {
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
      // The output is read over the attach stream and stored by Spool: the engine keeps no log of its own (its
      // json-file log grew with every byte, unbounded on the engine's disk until removal, and cost the engine
      // ~2 s of CPU for 50 MB).
      LogConfig: { Type: "none", Config: {} },
      // Mounts (not Binds): a missing source is an error, where Binds would create it as an empty directory.
      ...(o.mounts?.length ? { Mounts: o.mounts.map((m) => ({ Type: "bind" as const, Source: m.source, Target: m.target, ReadOnly: m.readOnly })) } : {}),
      ...(o.readOnly || o.workspaceWrite
        ? {
            ReadonlyRootfs: true,
            ReadonlyPaths: READ_ONLY_PATHS,
            CapDrop: ["ALL"],
            SecurityOpt: ["no-new-privileges", ...(o.seccomp ? [`seccomp=${o.seccomp}`] : [])],
            IpcMode: "none",
          }
        : {}),
      ...(o.workspaceWrite ? { Tmpfs: { "/tmp": "rw,nosuid,nodev,mode=1777" } } : {}),
    },
  };
}

/** What `inspectContainer` says of a container, from the engine's inspect answer. */
function containerFacts(info: Docker.ContainerInspectInfo): Awaited<ReturnType<DockerEngine["inspectContainer"]>> {
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
    ...(info.State?.Pid ? { pid: info.State.Pid } : {}),
    workingDir: info.Config?.WorkingDir || "/",
  };
}

/** Reads a pull's progress stream to its end: the last error the engine reported in it (after an HTTP 200), or null. */
async function pullFailure(stream: Readable): Promise<string | null> {
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
  return failure;
}
