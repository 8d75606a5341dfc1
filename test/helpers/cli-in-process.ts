import { AsyncLocalStorage } from "node:async_hooks";
import { PassThrough, type Readable, Writable } from "node:stream";
import { type OutputWatch, outputWatch } from "./output-watch.js";

/**
 * `spool <args>` run in this process, not as a subprocess: for tests that check what a command says and does, not
 * how its process behaves (signals, pipes, exit). A subprocess costs ~0.2 s of CPU (Node's start and the bundle's);
 * the suite ran ~480 of them. Each call sees its own environment, working directory, stdin (a pipe, not a terminal),
 * stdout and stderr, also when calls run side by side: the process's `env`, `cwd()`, `stdin`, `stdout` and `stderr`
 * are routed, for code running on behalf of a call (AsyncLocalStorage), to the call's own; anything else still reaches
 * the real ones. The commands run from src/ (the modules under test), not dist/.
 */

interface Call {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

const calls = new AsyncLocalStorage<Call>();
let installed = false;

/** A view of `real` that is the current call's `pick(call)` while a call runs. */
function routed<T extends object>(real: T, pick: (call: Call) => object): T {
  return new Proxy(real, {
    get(target, property) {
      const call = calls.getStore();
      const object = call ? pick(call) : target;
      const value = Reflect.get(object, property, object) as unknown;
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(object) : value;
    },
    set(target, property, value) {
      const call = calls.getStore();
      return Reflect.set(call ? pick(call) : target, property, value);
    },
  });
}

/** The process's environment: the call's own while a call runs (reads, writes, deletes, `in`, keys). */
function routedEnv(real: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = () => calls.getStore()?.env ?? real;
  return new Proxy(real, {
    get: (_, key) => Reflect.get(env(), key),
    set: (_, key, value) => Reflect.set(env(), key, typeof value === "string" ? value : String(value)),
    deleteProperty: (_, key) => Reflect.deleteProperty(env(), key),
    has: (_, key) => Reflect.has(env(), key),
    ownKeys: () => Reflect.ownKeys(env()),
    getOwnPropertyDescriptor: (_, key) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(env(), key);
      return descriptor && { ...descriptor, configurable: true };
    },
  });
}

function install(): void {
  if (installed) return;
  installed = true;
  const realCwd = process.cwd.bind(process);
  process.env = routedEnv(process.env);
  process.cwd = () => calls.getStore()?.cwd ?? realCwd();
  for (const name of ["stdin", "stdout", "stderr"] as const) {
    const real = process[name];
    Object.defineProperty(process, name, { configurable: true, enumerable: true, value: routed(real, (call) => call[name]) });
  }
}

/** A stdout or stderr for a call: what is written to it goes to `out`. */
function sink(out: OutputWatch, stream: "stdout" | "stderr"): Writable {
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, done) {
      out.add(stream, typeof chunk === "string" ? chunk : chunk.toString("utf8"));
      done();
    },
  });
}

/** `spool <args>` started in this process: read and waited on as a subprocess is (no `child`, no signals). */
export interface CliInProcess {
  stdout: () => string;
  stderr: () => string;
  output: () => string;
  waitFor(pattern: RegExp, stream?: "stdout" | "stderr", timeoutMs?: number): Promise<RegExpExecArray>;
  /** Text for its stdin (a pipe, not a terminal). */
  write(text: string): void;
  /** Ends its stdin (what closing a subprocess's stdin pipe does). */
  end(): void;
  /** Its exit code once it has ended (a command that throws rejects it). */
  exit: Promise<number | null>;
  exitsWithin(withinMs: number): Promise<{ code: number | null; ms: number }>;
}

/**
 * Starts `spool <args>` in this process. The environment is this process's with `SPOOL_LOG=warn` and `env` over it,
 * as a subprocess's would be; stdin is a pipe the caller writes (`write`), ended when `stdin` is "ignore".
 */
export function startCliInProcess(args: string[], env: NodeJS.ProcessEnv = {}, options: { cwd?: string; stdin?: "pipe" | "ignore" } = {}): CliInProcess {
  // A server's process is its own: `spool serve` lets go of inherited descriptors (this process's) once it is past its
  // --help, and the long-lived ones (runner, the stdio servers) handle signals and stdin as processes.
  const server = ["serve", "runner", "mcp", "acp"].includes(args[0] ?? "");
  if (server && !args.includes("--help") && !args.includes("-h"))
    throw new Error(`spool ${args[0]} runs as a process (spawnServe, spawnRunner, spawnCli), not in this one (only its --help may)`);
  install();
  const label = `spool ${args.join(" ")} (in process)`;
  const out = outputWatch(label, () => "");
  const stdin = new PassThrough();
  if (options.stdin === "ignore") stdin.end();
  const call: Call = {
    env: { ...process.env, SPOOL_LOG: "warn", ...env },
    cwd: options.cwd ?? process.cwd(),
    stdin,
    stdout: sink(out, "stdout"),
    stderr: sink(out, "stderr"),
  };
  const started = performance.now();
  const exit = import("../../src/cli/main.js").then(({ main }) => calls.run(call, () => main(args))).finally(() => out.end());
  exit.catch(() => undefined);
  return {
    stdout: () => out.text.stdout,
    stderr: () => out.text.stderr,
    output: () => out.text.output,
    waitFor: out.waitFor,
    write: (text) => void stdin.write(text),
    end: () => void stdin.end(),
    exit,
    exitsWithin: async (withinMs) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${label} did not end within ${withinMs} ms\n${out.told()}`)), withinMs);
      });
      try {
        const code = await Promise.race([exit, late]);
        return { code, ms: performance.now() - started };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Runs `spool <args>` in this process to its end (within `timeoutMs`): its exit code and what it wrote; stdin is
 * empty.
 */
export async function runCliInProcess(
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  timeoutMs: number,
): Promise<{ code: number | null; out: string; err: string }> {
  const cli = startCliInProcess(args, env, { cwd, stdin: "ignore" });
  const { code } = await cli.exitsWithin(timeoutMs);
  return { code, out: cli.stdout(), err: cli.stderr() };
}
