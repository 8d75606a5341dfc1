import type { Readable } from "node:stream";
import type { BackendName } from "../protocol/backends.js";
import type { ContainerInfo, ControlSignal, TtySize } from "../protocol/runner.js";
import type { ExecSandbox, SandboxInfo } from "./sandbox/sandbox.js";

/** What to run. Every backend runs `command` with `/bin/sh -c`. */
export interface ExecSpec {
  command: string;
  /** Working directory on the backend; undefined = the backend's default (project root, container WORKDIR, login directory). */
  cwd?: string;
  /**
   * Variables on top of the backend's base environment (SPEC §7 Runners,
   * "Environment"): the names the configuration lets through and the
   * proposal's `env`. No backend hands a command its own process's environment.
   */
  env: Record<string, string>;
  /** Read-only work: run it in the backend's read-only sandbox; a backend without one refuses it with `StartError`. Same as `sandbox: {mode: "read-only"}`. */
  readOnly?: boolean;
  /** Run it in this sandbox mode (read-only, workspace-write); a backend that cannot refuses it with `StartError`. Absent (and no readOnly): no sandbox. */
  sandbox?: ExecSandbox;
  /**
   * The project root on the backend, the directory a workspace-write command may write (and a read-only one still sees
   * under its private /tmp); default the command's directory (SSH: the login directory).
   */
  workspace?: string;
  /** Kill the work after this many milliseconds; 0 or undefined = no limit. */
  timeoutMs?: number;
  /** Aborting it cancels the work: TERM, then KILL after the backend's grace. */
  signal: AbortSignal;
  /** Bytes to write to the command's stdin; without it (and without `interactive` or `tty`) stdin is empty (closed at once). */
  stdin?: Buffer;
  /**
   * Keep stdin open as a pipe that `Execution.control` writes to and ends
   * (interactive work): the command reads what clients send until `end()`
   * or its own exit.
   */
  interactive?: boolean;
  /** Run under a pseudo-terminal of this size: output all comes on stdout (stderr stays empty), input goes to the terminal. */
  tty?: TtySize;
  /**
   * The project root as the server sees it and the command's directory relative to it ("" = the root),
   * for backends that mount the root (Docker). Absent when the directory is outside the root.
   */
  project?: { root: string; cwd: string };
}

/** How the work ended: the same shape for success, failure, cancel and timeout. */
export interface ExecResult {
  /** Exit code; null when unknown (killed by a signal, or the backend could not tell). Never guessed as 0. */
  exitCode: number | null;
  /** Signal that ended the process (e.g. "SIGKILL"), when the backend knows one. */
  signal: string | null;
  durationMs: number;
  cancelled: boolean;
  timedOut: boolean;
  /** Network mode allowlist: the hosts the egress proxy connected the command to, and those it refused. */
  egress?: { allowed: string[]; blocked: string[] };
}

/** A started command: two byte streams and its end. */
export interface Execution {
  stdout: Readable;
  stderr: Readable;
  /** Resolves after the process has ended and both streams have ended; never rejects. */
  result: Promise<ExecResult>;
  /** Where the process can be found, as far as known now: a host pid, a container id plus pid, a remote pid. */
  describe(): ExecutionTarget;
  /**
   * Resolves once the location is fully known (remote backends learn the pid
   * from the first output line). Read the output meanwhile: waiting on this
   * alone can deadlock when the process fills its other pipe first.
   */
  located: Promise<ExecutionTarget>;
  /** Input, end of input, signals and resizes, when the spec asked for `interactive` or `tty`. */
  control?: ExecutionControl;
}

/** Poking a running command: what `stream/input`, `stream/eof`, `stream/signal` and `stream/resize` reach on the backend. */
export interface ExecutionControl {
  /** Whether the command runs under a pseudo-terminal. */
  readonly tty: boolean;
  /**
   * Hands bytes to the command's stdin (or terminal). Throws `ControlError`
   * "closed" once input was ended or the command stopped reading it, and
   * "busy" when more than the backend's bound is still waiting to be read.
   */
  write(data: Buffer): void;
  /** Ends the input: a pipe is closed; a terminal gets its end-of-file character (^D). */
  end(): void;
  /** Sends a signal ("INT", "TERM", …) to the command's process group. */
  signal(name: ControlSignal): Promise<void>;
  /** Resizes the terminal; "unsupported" without one. */
  resize(size: TtySize): Promise<void>;
}

/** Why a control could not be applied: the runner answers UNSUPPORTED, STREAM_CLOSED or LIMIT_EXCEEDED. */
export class ControlError extends Error {
  override readonly name = "ControlError";
  constructor(
    readonly kind: "unsupported" | "closed" | "busy",
    message: string,
  ) {
    super(message);
  }
}

/** Bytes of input a backend keeps waiting for a command that does not read them, at most. */
export const MAX_PENDING_INPUT_BYTES = 1024 * 1024;

export interface ExecutionTarget {
  backend: BackendKind;
  pid?: number;
  container?: string;
  host?: string;
}

/** A backend of the protocol's table (src/protocol/backends.ts). */
export type BackendKind = BackendName;

/** What a backend that starts processes on this machine tells as it starts them (the local backend: src/runners/local/orphans.ts). */
export interface ProcessRecorder {
  /** `pid` was just started as the leader of its own process group (its parent has not reaped it yet), in the cgroup `cgroup` when it has one. */
  started(pid: number, command: string, cgroup?: string): void;
  /** The leader `pid` has exited (and been reaped). */
  exited(pid: number): void;
}

/**
 * One interface for every place a command can run. `start` resolves once the
 * process exists and rejects with `StartError` when it cannot be started
 * (missing directory, image, container, unreachable host).
 */
export interface Backend {
  readonly kind: BackendKind;
  /** A one-line description for logs and `runner/list`. */
  describe(): string;
  /**
   * Proves the backend usable before the runner attaches: the host is reached, trusted and logged
   * into; the engine answers and the image or container is there. Rejects with `BackendUnavailable`.
   * `progress` hears about slow steps (an image being pulled).
   */
  check(progress?: (line: string) => void): Promise<void>;
  start(spec: ExecSpec): Promise<Execution>;
  /** Where read-only work would run: probed once (the first call), then the same answer. */
  sandbox(): Promise<SandboxInfo>;
  /**
   * Where the project root's commands run when no --root says and it is not the root's own path (an SSH login's
   * directory, `~`; a Docker container's WORKDIR when the project is not mounted): every proposal's cwd shows it.
   * Asked after check(); a backend without it runs them at the root's own path.
   */
  root?(): Promise<string | undefined>;
  /** What holds each command's processes (runners/local/container.ts), for the runner's facts; a backend without it says nothing. */
  container?(): Promise<ContainerInfo>;
  /** Releases connections; running executions are cancelled. */
  close(): Promise<void>;
}

export class StartError extends Error {
  override readonly name: string = "StartError";
}

/** The backend cannot be used at all (nothing can start there): one line saying what failed and what to do about it. */
export class BackendUnavailable extends StartError {
  override readonly name: string = "BackendUnavailable";
}

/** The first line of an error's message, for one-line reports. */
export function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!.trim();
}

/** How long backends wait between TERM and KILL when cancelling. */
export const DEFAULT_KILL_GRACE_MS = 2000;
