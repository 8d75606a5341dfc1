import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const SPOOL_BIN = fileURLToPath(new URL("../../bin/spool.js", import.meta.url));

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `spool serve` as a real subprocess and waits for its "listening" line. */
export function spawnServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, [SPOOL_BIN, "serve", ...args], {
    env: { ...process.env, SPOOL_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`spool serve did not start:\n${out}`)), 30_000);
    const onData = (data: Buffer) => {
      out += data.toString();
      const match = /Spool listening on (ws:\/\/\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({
          child,
          url: match[1]!,
          output: () => out,
          stop: (signal = "SIGTERM") => {
            child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`spool serve exited with ${code}:\n${out}`));
    });
  });
}

export interface RunnerProcess {
  child: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `spool runner` as a real subprocess and waits until it has attached. */
export function spawnRunner(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunnerProcess> {
  const child = spawn(process.execPath, [SPOOL_BIN, "runner", ...args], {
    env: { ...process.env, SPOOL_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`spool runner did not attach:\n${out}`)), 30_000);
    child.stdout!.on("data", (data: Buffer) => {
      out += data.toString();
      if (/Runner \S+ attached/.test(out)) {
        clearTimeout(timer);
        resolve({
          child,
          output: () => out,
          stop: (signal = "SIGTERM") => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    });
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`spool runner exited with ${code}:\n${out}`));
    });
  });
}
