import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { runCliInProcess } from "./cli-in-process.js";
import { outputWatch } from "./output-watch.js";

export const SPOOL_BIN = fileURLToPath(new URL("../../bin/spool.js", import.meta.url));

/**
 * Every subprocess and terminal a test file started and that has not ended yet: stopped after the file's tests,
 * also when a test failed before its own `stop` (issue 41: one subprocess harness, always stopped).
 */
const live = new Set<{ stop(): Promise<unknown> }>();

/**
 * Stops what the file left running (`live`), after its tests: called by file-cleanup.ts, vitest's setupFiles, which
 * runs for every file. (An afterAll at this module's top ran after the first file of each worker only: with
 * `isolate: false` a worker evaluates a helper once, for the first file that imports it.)
 */
export async function stopLeftRunning(): Promise<void> {
  for (const running of [...live]) {
    live.delete(running);
    await running.stop();
  }
}

/** Keeps `running` in the file's list of live processes until `ended` settles. */
export function stoppedAfterTheFile(running: { stop(): Promise<unknown> }, ended: Promise<unknown>): void {
  live.add(running);
  void ended.finally(() => live.delete(running));
}

/** Calls `stop`; calls `kill` if `stop` has not finished after `ms`. */
export async function stopWithin(ms: number, stop: () => Promise<unknown>, kill: () => void): Promise<void> {
  const timer = setTimeout(kill, ms);
  try {
    await stop();
  } finally {
    clearTimeout(timer);
  }
}

/** A `spool` subprocess with pipes: its output read as text, waited on line by line, always stopped. */
export interface SpoolChild {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** stdout and stderr together, in the order they came. */
  output: () => string;
  /** Resolves with the first match of `pattern` in stdout (or stderr); rejects when the process closes its output first, or after `timeoutMs`. */
  waitFor(pattern: RegExp, stream?: "stdout" | "stderr", timeoutMs?: number): Promise<RegExpExecArray>;
  write(text: string): void;
  exit: Promise<number | null>;
  /** Milliseconds from now until it exits and its stdout and stderr are read to their end (killed, and rejects, after `withinMs`). */
  exitsWithin(withinMs: number): Promise<{ code: number | null; ms: number }>;
  /** Sends a signal (SIGTERM) unless it has exited, and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface SpoolChildOptions {
  cwd?: string;
  /** stdin a pipe (`write`), or nothing (default: a pipe). */
  stdin?: "pipe" | "ignore";
  /** false: stdout is left to the caller to read (a protocol on stdio), and `stdout()` stays empty. */
  readStdout?: boolean;
  /** The node that runs bin/spool.js (default: this one). */
  node?: string;
}

/** Runs `spool <args>` (a client, `serve`, `runner`, `acp`) as a subprocess with pipes: no terminal, no colour. */
export function spawnSpoolChild(args: string[], env: NodeJS.ProcessEnv = {}, options: SpoolChildOptions = {}): SpoolChild {
  const child = spawn(options.node ?? process.execPath, [SPOOL_BIN, ...args], {
    env: { ...process.env, SPOOL_LOG: "warn", ...env },
    stdio: [options.stdin ?? "pipe", "pipe", "pipe"],
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  const out = outputWatch(`spool ${args[0]}`, () => ` (exit ${child.exitCode ?? child.signalCode})`);
  const read = (stream: "stdout" | "stderr") => (d: Buffer) => out.add(stream, d.toString());
  if (options.readStdout !== false) child.stdout!.on("data", read("stdout"));
  child.stderr!.on("data", read("stderr"));
  child.once("close", () => out.end());
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  // "exit" can come before the last of stdout and stderr has been read (busy fresh clone q42: `spool act` exited 3
  // and its stderr still read empty); "close" comes once both pipes are read to their end.
  const drained = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  const stop = (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exit;
  };
  const running: SpoolChild = {
    child,
    stdout: () => out.text.stdout,
    stderr: () => out.text.stderr,
    output: () => out.text.output,
    waitFor: out.waitFor,
    write: (text) => child.stdin!.write(text),
    exit,
    exitsWithin: (withinMs) => {
      const started = Date.now();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`still running after ${withinMs} ms:\n${out.told()}`));
        }, withinMs);
        void drained.then((code) => {
          clearTimeout(timer);
          resolve({ code, ms: Date.now() - started });
        });
      });
    },
    stop,
  };
  // Left running by its test: SIGTERM, then SIGKILL if it is still there 10 s later.
  stoppedAfterTheFile({ stop: () => stopWithin(10_000, stop, () => child.kill("SIGKILL")) }, exit);
  return running;
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `spool <command>` as a real subprocess and waits until its stdout matches `ready`. */
async function spawnSpool(command: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp, node?: string, cwd?: string) {
  const running = spawnSpoolChild([command, ...args], env, { stdin: "ignore", ...(node ? { node } : {}), ...(cwd ? { cwd } : {}) });
  const match = await running.waitFor(ready, "stdout", 60_000).catch(async (error: unknown) => {
    await running.stop("SIGKILL");
    throw error;
  });
  return { child: running.child, match, output: running.output, stop: running.stop };
}

/** Starts `spool serve` as a real subprocess and waits for its "listening" line (`node`: what runs bin/spool.js). */
/** Starts `spool serve` (in `cwd`, else the test's own directory) and waits until it listens. */
export async function spawnServe(args: string[], env: NodeJS.ProcessEnv = {}, node?: string, cwd?: string): Promise<ServeProcess> {
  const serve = await spawnSpool("serve", args, env, /Spool listening on (ws:\/\/\S+)/, node, cwd);
  return { ...serve, url: serve.match[1]! };
}

export interface RunnerProcess {
  child: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `spool runner` (in `cwd`, else the test's own directory) as a real subprocess and waits until it has attached. */
export function spawnRunner(args: string[], env: NodeJS.ProcessEnv = {}, node?: string, cwd?: string): Promise<RunnerProcess> {
  return spawnSpool("runner", args, env, /Runner \S+ attached/, node, cwd);
}

export type CliProcess = SpoolChild;

/** Runs `spool <args>` as a subprocess with pipes for stdin, stdout and stderr (no terminal: no colour). */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}, options: { cwd?: string } = {}): CliProcess {
  return spawnSpoolChild(args, env, options);
}

/**
 * A port free now, for a server a test starts with a port of its own (`--port N`, config.json's `port`). Chosen at
 * random below the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), never one this process gave
 * before: a port the kernel handed to a `listen(0)` and took back was soon any outgoing connection's local port
 * (every client of every suite on the machine takes one), and a second CI run beside this one once took the port
 * between this check and the server's listen (ciG, Node 24: "127.0.0.1:35835 is already in use").
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = BELOW_EPHEMERAL.low + Math.floor(Math.random() * (BELOW_EPHEMERAL.high - BELOW_EPHEMERAL.low));
    if (given.has(port)) continue;
    if (await listensOn(port)) {
      given.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${BELOW_EPHEMERAL.low}-${BELOW_EPHEMERAL.high} after 200 tries`);
}

/** Ports freePort gave in this process. */
const given = new Set<number>();

/** 20000 up to the ephemeral range's start (32768 by default), or 20000-30000 when the range is not known. */
const BELOW_EPHEMERAL = (() => {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 21000) return { low: 20000, high: low };
  } catch {
    // not Linux
  }
  return { low: 20000, high: 30000 };
})();

/** Whether a listener could take `port` on 127.0.0.1 now (taken and let go at once). */
function listensOn(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** Whether process `pid` still exists (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `spool <args>` to its end (within `timeoutMs`): its exit code and what it wrote. In this process
 * (helpers/cli-in-process.ts): a test of what a command says and does. A test of the process itself (its exit on a
 * signal or a closed pipe, its start) uses spawnCli or runCliProcess.
 */
export const runCli = runCliInProcess;

/** runCli in a subprocess of its own (bin/spool.js, as a person runs it). */
export async function runCliProcess(
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  timeoutMs: number,
): Promise<{ code: number | null; out: string; err: string }> {
  const cli = spawnCli(args, env, { cwd });
  const { code } = await cli.exitsWithin(timeoutMs);
  return { code, out: cli.stdout(), err: cli.stderr() };
}

/** The pid of a process whose command line is exactly `argv`, or 0. */
export function processWith(argv: string[]): number {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8") === `${argv.join("\0")}\0`) return Number(name);
    } catch {
      // Gone meanwhile.
    }
  }
  return 0;
}
