import { readSync } from "node:fs";
import { stat } from "node:fs/promises";
import type { Socket } from "node:net";
import { constants } from "node:os";
import { PassThrough } from "node:stream";
import { type IPty, spawn } from "node-pty";
import { ControlError, type ExecResult, type ExecSpec, type Execution, type ExecutionControl, firstLine, StartError } from "../backend.js";
import { signalName, TTY_EOF, TTY_TERM } from "../control.js";
import { HeldOutput } from "../output.js";
import { ttySetUp } from "../sandbox/setup.js";
import { supervise } from "../supervise.js";
import type { CommandCgroup } from "./container.js";
import { containedEnd, type ProcessRecorder } from "./orphans.js";
import { TakenSignals } from "./taken-signals.js";

export interface LocalTtyOptions {
  file: string;
  args: string[];
  cwd: string;
  /** The command's whole environment (base with TERM, passed names, the proposal's env). */
  env: Record<string, string>;
  killGraceMs?: number | undefined;
  closing: AbortSignal;
  processes?: ProcessRecorder | undefined;
  signalGroup(pgid: number, signal: NodeJS.Signals): void;
  /** The command is contained by bubblewrap: a client's signal waits until it can take it (taken-signals.ts). */
  contained?: boolean;
  /** The command's cgroup (container.ts): a cancel signals all of it, and it is killed when the command ends. */
  cgroup?: CommandCgroup | undefined;
  /** The sandbox says it is set up with this text as the terminal's first output (runners/sandbox/setup.ts): taken out, waited for. */
  nonce?: string | undefined;
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name]));

/** node-pty reports a directory it cannot enter only as the child's exit: said before anything starts. */
async function checkDirectory(cwd: string): Promise<void> {
  const directory = await stat(cwd).catch((error: unknown) => error as Error);
  if (directory instanceof Error || !directory.isDirectory()) {
    throw new StartError(`Cannot start the command: cwd ${cwd} is not a directory${directory instanceof Error ? ` (${firstLine(directory)})` : ""}`);
  }
}

/** The command under a new terminal of `size`; a spawn that fails is a StartError. */
function spawnPty(options: LocalTtyOptions, size: { cols: number; rows: number }): IPty {
  try {
    return spawn(options.file, options.args, {
      name: options.env.TERM ?? TTY_TERM,
      cols: size.cols,
      rows: size.rows,
      cwd: options.cwd,
      env: options.env,
      encoding: null,
    });
  } catch (error) {
    throw new StartError(`Cannot start the command: ${firstLine(error)}`);
  }
}

/** What is read from the terminal past its socket's end, at most (the kernel holds some KiB; a bound all the same). */
const TAIL_MAX_BYTES = 1024 * 1024;

/**
 * The terminal read to its end before node-pty's socket goes. The socket lost the tail of a command's output two
 * ways, both when its reader was behind (paused for the consumer, or a busy machine's stalled event loop):
 * - libuv takes a hang-up (the command's side closed) for the end as soon as a read comes back short, and a read of
 *   the terminal comes back with at most the line discipline's 4 KiB while the rest still waits in the kernel;
 * - node-pty destroys the socket 200 ms after the command's exit, dropping what the paused socket held and what the
 *   kernel did.
 * Now, at that end or that destroy, what the socket holds is handed on through its `data` listeners, then what the
 * kernel holds is read from the terminal's descriptor (it answers EIO once read out, EAGAIN while a process still
 * holds the terminal) and handed on the same way. Without node-pty's socket and descriptor where this version keeps
 * them, nothing changes.
 */
function readToTheEnd(pty: IPty): void {
  const { _socket: socket, _fd: fd } = pty as unknown as { _socket?: Socket; _fd?: number };
  if (!socket || typeof socket.destroy !== "function" || typeof fd !== "number") return;
  let read = false;
  const tail = () => {
    if (read || socket.destroyed) return;
    read = true;
    while (socket.readableLength > 0 && socket.read() !== null);
    const buffer = Buffer.allocUnsafe(64 * 1024);
    for (let total = 0; total < TAIL_MAX_BYTES; ) {
      let bytes = 0;
      try {
        bytes = readSync(fd, buffer, 0, buffer.length, null);
      } catch {
        break;
      }
      if (bytes <= 0) break;
      socket.emit("data", Buffer.from(buffer.subarray(0, bytes)));
      total += bytes;
    }
  };
  const destroy = socket.destroy.bind(socket);
  socket.destroy = ((error?: Error) => {
    tail();
    return destroy(error);
  }) as Socket["destroy"];
  socket.prependListener("end", tail);
}

/**
 * Runs a command under a pseudo-terminal (node-pty): it leads its own
 * session, so its process group is its pid; output (stdout and stderr
 * alike) comes on stdout, with backpressure through the terminal; input,
 * ^D, signals and resizes go through `control`.
 */
export async function startLocalTty(spec: ExecSpec & { tty: { cols: number; rows: number } }, options: LocalTtyOptions): Promise<Execution> {
  const started = Date.now();
  await checkDirectory(options.cwd);
  const pty = spawnPty(options, spec.tty);
  const pid = pty.pid;
  // A contained command's end is told once its namespace is empty (orphans.ts, containedEnd).
  const namespace = options.contained ? containedEnd(pid) : null;
  options.processes?.started(pid, spec.command, options.cgroup?.path);
  // node-pty reports the exit once the terminal has delivered its last output.
  const exited = new Promise<{ exitCode: number; signal?: number }>((resolve) => pty.onExit(resolve));
  // With encoding null, node-pty hands over Buffers (its typings say string).
  const subscribe = (listener: (data: Buffer) => void) => pty.onData(listener as (data: string | Buffer) => void);
  let first: Buffer | undefined;
  if (options.nonce) {
    try {
      first = await ttySetUp(subscribe, exited, options.nonce, spec.signal);
    } catch (error) {
      options.processes?.exited(pid);
      throw error;
    }
  }
  // The terminal's output, paused while 64 KiB wait for the consumer, read again once it wants more (or destroyed it).
  const stdout = new HeldOutput(() => pty.resume());
  const stderr = new PassThrough();
  stderr.end();
  let ended = false;
  if (first?.length) stdout.offer(first);
  subscribe((data) => {
    if (!stdout.offer(data)) pty.pause();
  });
  readToTheEnd(pty);
  const supervision = supervise(
    spec,
    (signal) => {
      options.cgroup?.signal(signal, pid);
      options.signalGroup(pid, signal);
    },
    {
      killGraceMs: options.killGraceMs,
      closing: options.closing,
    },
  );
  const result = (async (): Promise<ExecResult> => {
    const { exitCode, signal } = await exited;
    ended = true;
    // bwrap exits before its PID namespace is empty (orphans.ts, containedEnd): the end is told once it is.
    await namespace?.ended();
    await options.cgroup?.kill();
    options.processes?.exited(pid);
    supervision.done({ keepKill: true });
    stdout.push(null);
    const name = signal ? (SIGNAL_NAMES.get(signal) ?? `SIG${signal}`) : null;
    return {
      exitCode: name ? null : exitCode,
      signal: name,
      durationMs: Date.now() - started,
      cancelled: supervision.cancelled,
      timedOut: supervision.timedOut,
    };
  })();
  const open = () => {
    if (ended) throw new ControlError("closed", "the command has ended");
  };
  const signals = options.contained ? new TakenSignals(pid, options.signalGroup) : null;
  const control: ExecutionControl = {
    tty: true,
    write(data) {
      open();
      pty.write(data);
    },
    end() {
      open();
      pty.write(TTY_EOF);
    },
    signal: async (name) => (signals ? signals.signal(signalName(name)) : options.signalGroup(pid, signalName(name))),
    async resize({ cols, rows }) {
      open();
      pty.resize(cols, rows);
    },
  };
  return {
    stdout,
    stderr,
    result,
    describe: () => ({ backend: "local", pid }),
    located: Promise.resolve({ backend: "local", pid }),
    control,
  };
}
