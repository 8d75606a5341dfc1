import { PassThrough, Transform, type TransformCallback, Writable } from "node:stream";
import { BASE_ENV_DEFAULTS } from "./environment.js";
import { BWRAP_ARGS } from "./sandbox.js";

/**
 * Splits Docker's multiplexed attach/exec stream (8-byte frame headers: type,
 * 0, 0, 0, big-endian length) into stdout and stderr, with backpressure: a
 * frame is not taken until the output it goes to has room.
 */
export class DockerDemuxer extends Writable {
  readonly stdout = new PassThrough({ highWaterMark: 64 * 1024 });
  readonly stderr = new PassThrough({ highWaterMark: 64 * 1024 });
  #pending: Buffer = Buffer.alloc(0);

  constructor() {
    super();
    this.once("finish", () => this.#endOutputs());
    this.once("close", () => this.#endOutputs());
  }

  #endOutputs(): void {
    if (!this.stdout.writableEnded) this.stdout.end();
    if (!this.stderr.writableEnded) this.stderr.end();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let buffer = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    const waits: Promise<void>[] = [];
    while (buffer.length >= 8) {
      const length = buffer.readUInt32BE(4);
      if (buffer.length < 8 + length) break;
      const type = buffer[0];
      const payload = buffer.subarray(8, 8 + length);
      buffer = buffer.subarray(8 + length);
      // 1 stdout, 2 stderr; 0 (stdin echo) is not output.
      const target = type === 1 ? this.stdout : type === 2 ? this.stderr : null;
      if (target && payload.length > 0 && !target.write(payload)) {
        waits.push(new Promise((resolve) => target.once("drain", resolve)));
      }
    }
    this.#pending = Buffer.from(buffer);
    if (waits.length === 0) callback();
    else void Promise.all(waits).then(() => callback());
  }
}

/**
 * Takes the first line of a stream as the process id that a wrapper printed
 * (`echo $$; exec …`) and passes everything after it through untouched.
 */
export class PidLine extends Transform {
  readonly pid: Promise<number | null>;
  #resolve!: (pid: number | null) => void;
  #head: Buffer | null = Buffer.alloc(0);

  constructor() {
    super();
    this.pid = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#head === null) {
      callback(null, chunk);
      return;
    }
    const joined = Buffer.concat([this.#head, chunk]);
    const newline = joined.indexOf(10);
    if (newline === -1 && joined.length < 32) {
      this.#head = joined;
      callback();
      return;
    }
    // Under a terminal the line ends in \r\n.
    const line = joined
      .subarray(0, newline === -1 ? 0 : newline)
      .toString()
      .replace(/\r$/, "");
    this.#resolve(/^\d+$/.test(line) ? Number(line) : null);
    this.#head = null;
    callback(null, newline === -1 ? joined : joined.subarray(newline + 1));
  }

  override _flush(callback: TransformCallback): void {
    if (this.#head !== null) this.#resolve(null);
    callback(null, this.#head?.length ? this.#head : undefined);
  }
}

/** Quotes a string for a POSIX shell. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The shell line that remote backends run: prints the shell's pid (which the
 * command keeps through `exec`, and which leads the process group) on the
 * first stdout line, moves to the directory, exports the variables, then runs
 * the command with /bin/sh -c.
 */
export function wrapperScript(command: string, cwd: string | undefined, env: Record<string, string>): string {
  const parts = ["echo $$"];
  if (cwd) parts.push(`cd -- ${shellQuote(cwd)}`);
  const vars = Object.entries(env);
  if (vars.length) parts.push(`export ${vars.map(([k, v]) => `${k}=${shellQuote(v)}`).join(" ")}`);
  parts.push(`exec /bin/sh -c ${shellQuote(command)}`);
  return parts.join(" && ");
}

/**
 * The shell line the SSH backend runs: like `wrapperScript`, but the command
 * starts with a clean environment (`env -i`): PATH, HOME, LANG and TERM of
 * the remote login (with defaults where it has none), then `env`. With
 * `bwrap` (its path on the remote host) the command runs in the read-only
 * sandbox there.
 */
export function remoteScript(command: string, cwd: string | undefined, env: Record<string, string>, options: { bwrap?: string } = {}): string {
  const parts = ["echo $$"];
  if (cwd) parts.push(`cd -- ${shellQuote(cwd)}`);
  const base = [
    `"PATH=\${PATH:-${BASE_ENV_DEFAULTS.PATH}}"`,
    `"HOME=\${HOME:-}"`,
    `"LANG=\${LANG:-${BASE_ENV_DEFAULTS.LANG}}"`,
    `"TERM=\${TERM:-${BASE_ENV_DEFAULTS.TERM}}"`,
  ];
  const vars = Object.entries(env).map(([k, v]) => shellQuote(`${k}=${v}`));
  const sandbox = options.bwrap ? [shellQuote(options.bwrap), ...BWRAP_ARGS.map(shellQuote), "--chdir", '"$PWD"', "--"] : [];
  parts.push(["exec env -i", ...base, ...vars, ...sandbox, "/bin/sh -c", shellQuote(command)].join(" "));
  return parts.join(" && ");
}
