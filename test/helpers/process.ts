import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export const SPOOL_BIN = fileURLToPath(new URL("../../bin/spool.js", import.meta.url));

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

interface SpoolProcess {
  child: ChildProcess;
  /** The first match of `ready` in stdout. */
  match: RegExpExecArray;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `spool <command>` as a real subprocess and waits until its stdout matches `ready`. */
function spawnSpool(command: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<SpoolProcess> {
  const child = spawn(process.execPath, [SPOOL_BIN, command, ...args], {
    env: { ...process.env, SPOOL_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`spool ${command} did not get ready:\n${out}`)), 60_000);
    child.stdout!.on("data", (data: Buffer) => {
      out += data.toString();
      const match = ready.exec(out);
      if (!match) return;
      clearTimeout(timer);
      resolve({
        child,
        match,
        output: () => out,
        stop: (signal = "SIGTERM") => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      });
    });
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`spool ${command} exited with ${code}:\n${out}`));
    });
  });
}

/** Starts `spool serve` as a real subprocess and waits for its "listening" line. */
export async function spawnServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const serve = await spawnSpool("serve", args, env, /Spool listening on (ws:\/\/\S+)/);
  return { ...serve, url: serve.match[1]! };
}

export interface RunnerProcess {
  child: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `spool runner` as a real subprocess and waits until it has attached. */
export function spawnRunner(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunnerProcess> {
  return spawnSpool("runner", args, env, /Runner \S+ attached/);
}

export interface CliProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once stdout (or stderr) matches `pattern`. */
  waitFor(pattern: RegExp, stream?: "stdout" | "stderr", timeoutMs?: number): Promise<void>;
  write(text: string): void;
  exit: Promise<number | null>;
  /** Milliseconds from now until it exits (rejects after `withinMs`). */
  exitsWithin(withinMs: number): Promise<{ code: number | null; ms: number }>;
}

/** Runs `spool <args>` as a subprocess with pipes for stdin, stdout and stderr (no terminal: no colour). */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}, options: { cwd?: string } = {}): CliProcess {
  const child = spawn(process.execPath, [SPOOL_BIN, ...args], {
    env: { ...process.env, SPOOL_LOG: "warn", ...env },
    stdio: ["pipe", "pipe", "pipe"],
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  const out = { stdout: "", stderr: "" };
  const watchers: { pattern: RegExp; stream: "stdout" | "stderr"; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...watchers]) {
      if (w.pattern.test(out[w.stream])) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout!.on("data", (d: Buffer) => {
    out.stdout += d.toString();
    check();
  });
  child.stderr!.on("data", (d: Buffer) => {
    out.stderr += d.toString();
    check();
  });
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    waitFor: (pattern, stream = "stdout", timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${pattern} in ${stream}:\n--- stdout\n${out.stdout}\n--- stderr\n${out.stderr}`)),
          timeoutMs,
        );
        watchers.push({
          pattern,
          stream,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        check();
      }),
    write: (text) => child.stdin!.write(text),
    exit,
    exitsWithin: (withinMs) => {
      const started = Date.now();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`still running after ${withinMs} ms:\n--- stdout\n${out.stdout}\n--- stderr\n${out.stderr}`));
        }, withinMs);
        void exit.then((code) => {
          clearTimeout(timer);
          resolve({ code, ms: Date.now() - started });
        });
      });
    },
  };
}

/** A TCP port on 127.0.0.1 that nothing listens on at the moment of asking (for a server a test starts itself). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
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
