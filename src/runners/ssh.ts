import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { Client, type ClientChannel } from "ssh2";
import { type Backend, type ExecResult, type ExecSpec, type Execution, type ExecutionTarget, StartError } from "./backend.js";
import { BWRAP_DETAIL, bwrapCommand, noSandbox, PROBE_COMMAND, SANDBOX_OFF, type SandboxInfo, type SandboxMode } from "./sandbox.js";
import { PidLine, remoteScript, shellQuote } from "./streams.js";
import { supervise, withManyListeners } from "./supervise.js";

/** One remote command as this backend sees it; `ssh2Transport` provides it over ssh2. */
export interface RemoteChannel {
  stdout: Readable;
  stderr: Readable;
  stdin: Writable;
  /** Sends a signal over the channel ("TERM", "KILL"); servers may ignore it. */
  signal(name: string): void;
  /** Resolves when the channel has closed; exit fields are null when the server sent none. */
  closed: Promise<{ exitCode: number | null; signal: string | null }>;
}

/** The narrow SSH interface the backend needs: run a command line on one reused connection. */
export interface RemoteShell {
  exec(commandLine: string): Promise<RemoteChannel>;
  close(): void;
}

export interface SshOptions {
  host: string;
  port?: number;
  username: string;
  privateKey: Buffer | string;
  passphrase?: string;
  /**
   * Accepted host keys, as OpenSSH public-key lines ("ssh-ed25519 AAAA…"). Without
   * them the known_hosts file is used.
   */
  hostKeys?: string[];
  /** Defaults to ~/.ssh/known_hosts. */
  knownHostsFile?: string;
  /** Turns host-key checking off. For tests and throwaway hosts only. */
  insecureSkipHostKeyCheck?: boolean;
  readyTimeoutMs?: number;
}

/** Key blobs (base64 field) that known_hosts lines accept for host:port. */
export function knownHostKeys(text: string, host: string, port: number): { accepted: Set<string>; revoked: Set<string> } {
  const names = port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`];
  const accepted = new Set<string>();
  const revoked = new Set<string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]!.startsWith("@")) marker = fields.shift();
    const [patterns, , blob] = fields;
    if (!patterns || !blob || marker === "@cert-authority") continue;
    const matches = patterns.split(",").some((pattern) => {
      if (pattern.startsWith("|1|")) {
        const [, , salt, hash] = pattern.split("|");
        return names.some((name) => createHmac("sha1", Buffer.from(salt!, "base64")).update(name).digest("base64") === hash);
      }
      return names.includes(pattern);
    });
    if (matches) (marker === "@revoked" ? revoked : accepted).add(blob);
  }
  return { accepted, revoked };
}

/** Opens (and reopens after a drop) one ssh2 connection, shared by every command. */
export function ssh2Shell(options: SshOptions): RemoteShell {
  const port = options.port ?? 22;
  let verify: (key: Buffer) => boolean;
  if (options.insecureSkipHostKeyCheck) {
    verify = () => true;
  } else {
    const keys = options.hostKeys
      ? { accepted: new Set(options.hostKeys.map((line) => line.trim().split(/\s+/)[1] ?? "")), revoked: new Set<string>() }
      : knownHostKeys(readFileSync(options.knownHostsFile ?? join(homedir(), ".ssh", "known_hosts"), "utf8"), options.host, port);
    if (keys.accepted.size === 0) throw new StartError(`No known host key for ${options.host}:${port}; add one or pass an explicit host key`);
    verify = (key) => {
      const blob = key.toString("base64");
      return keys.accepted.has(blob) && !keys.revoked.has(blob);
    };
  }
  let connection: Promise<Client> | null = null;
  const connect = () =>
    new Promise<Client>((resolve, reject) => {
      const client = new Client();
      let ready = false;
      client.once("ready", () => {
        ready = true;
        resolve(client);
      });
      client.on("error", (error) => {
        if (!ready) reject(new StartError(`SSH to ${options.username}@${options.host}:${port} failed: ${error.message}`));
      });
      client.once("close", () => {
        connection = null;
      });
      client.connect({
        host: options.host,
        port,
        username: options.username,
        privateKey: options.privateKey,
        ...(options.passphrase ? { passphrase: options.passphrase } : {}),
        hostVerifier: (key: Buffer) => verify(key),
        readyTimeout: options.readyTimeoutMs ?? 10_000,
        keepaliveInterval: 15_000,
      });
    });
  return {
    async exec(commandLine) {
      connection ??= connect().catch((error) => {
        connection = null;
        throw error;
      });
      const client = await connection;
      // The exit listener is attached inside the callback: a fast command's exit-status and close can be
      // processed in the same read as the exec reply, before any promise continuation runs.
      const { channel, closed } = await new Promise<{ channel: ClientChannel; closed: RemoteChannel["closed"] }>((resolve, reject) =>
        client.exec(commandLine, (error, ch) => {
          if (error) return reject(new StartError(`SSH exec failed: ${error.message}`));
          let exit: { exitCode: number | null; signal: string | null } = { exitCode: null, signal: null };
          ch.on("exit", (code: number | null, signalName?: string) => {
            exit =
              typeof code === "number"
                ? { exitCode: code, signal: null }
                : { exitCode: null, signal: signalName ? (signalName.startsWith("SIG") ? signalName : `SIG${signalName}`) : null };
          });
          // "exit" may never come (the server did not say): then the result stays unknown, never 0.
          const closed = new Promise<{ exitCode: number | null; signal: string | null }>((done) => ch.once("close", () => done(exit)));
          resolve({ channel: ch, closed });
        }),
      );
      return { stdout: channel, stderr: channel.stderr, stdin: channel, signal: (name) => channel.signal(name), closed };
    },
    close() {
      void connection?.then((c) => c.end()).catch(() => undefined);
      connection = null;
    },
  };
}

/**
 * Runs commands on a remote host over SSH, reusing one connection. The
 * wrapper reports the remote shell's pid (a process-group leader, since sshd
 * starts each session in its own session), so cancel works twice over: a
 * channel signal, and `kill` of the process group from a second channel for
 * servers that ignore channel signals.
 */
export class SshBackend implements Backend {
  readonly kind = "ssh" as const;
  readonly #shell: RemoteShell;
  /** Aborted by close(); every running execution listens to it, so it may have many listeners. */
  readonly #closing = withManyListeners(new AbortController());

  /** The remote bwrap's path and what it gives: probed once, again only when the host could not be reached. */
  #probe: Promise<{ info: SandboxInfo; bwrap?: string; unreachable?: boolean }> | null = null;

  #sandbox(): Promise<{ info: SandboxInfo; bwrap?: string }> {
    return (this.#probe ??= this.#probeSandbox().then((answer) => {
      if (answer.unreachable) this.#probe = null;
      return answer;
    }));
  }

  constructor(
    private readonly options: SshOptions & {
      killGraceMs?: number;
      shell?: RemoteShell;
      /** Read-only sandbox: `auto` (bubblewrap on the remote host when it works there, default), `off` (none: read-only work is refused). */
      sandbox?: Exclude<SandboxMode, "require">;
    },
  ) {
    this.#shell = options.shell ?? ssh2Shell(options);
  }

  async sandbox(): Promise<SandboxInfo> {
    return (await this.#sandbox()).info;
  }

  /** Spool controls nothing on the remote host but what it runs: read-only work needs bubblewrap there, working for the login user. */
  async #probeSandbox(): Promise<{ info: SandboxInfo; bwrap?: string; unreachable?: boolean }> {
    if (this.options.sandbox === "off") return { info: noSandbox(SANDBOX_OFF) };
    const host = `${this.options.username}@${this.options.host}`;
    const probe = [
      'b=$(command -v bwrap) || { echo "missing"; exit 0; }',
      'echo "$b"',
      `"$b" ${bwrapCommand("/", PROBE_COMMAND).map(shellQuote).join(" ")} 2>&1 && echo ok`,
    ].join("; ");
    let output = "";
    try {
      const channel = await this.#shell.exec(probe);
      channel.stdin.end();
      channel.stderr.resume();
      for await (const chunk of channel.stdout) output += String(chunk);
      await channel.closed;
    } catch (error) {
      return {
        info: noSandbox(`ssh: could not look for bubblewrap on ${host}: ${error instanceof Error ? error.message : String(error)}`),
        unreachable: true,
      };
    }
    const [path = "", ...rest] = output.trim().split("\n");
    if (path === "missing" || !path.startsWith("/")) return { info: noSandbox(`ssh: bubblewrap is not installed on ${host}; read-only work is refused there`) };
    if (rest.at(-1) !== "ok") {
      return { info: noSandbox(`ssh: bubblewrap on ${host} cannot build the read-only sandbox: ${rest[0] ?? "it failed"}`.slice(0, 480)) };
    }
    return { info: { kind: "bwrap", readOnly: true, detail: `${BWRAP_DETAIL}, on ${host}` }, bwrap: path };
  }

  describe(): string {
    return `ssh: ${this.options.username}@${this.options.host}:${this.options.port ?? 22}`;
  }

  async start(spec: ExecSpec): Promise<Execution> {
    const started = Date.now();
    let bwrap: string | undefined;
    if (spec.readOnly) {
      const sandbox = await this.#sandbox();
      if (!sandbox.bwrap) throw new StartError(`read-only commands are refused on this runner: it has no read-only sandbox (${sandbox.info.detail})`);
      bwrap = sandbox.bwrap;
    }
    // A clean environment: the remote login's PATH, HOME, LANG, TERM and what the runner was given; never the login's whole environment.
    const channel = await this.#shell.exec(remoteScript(spec.command, spec.cwd, spec.env, bwrap ? { bwrap } : {}));
    channel.stdin.end(spec.stdin ?? undefined);
    const pidLine = new PidLine();
    channel.stdout.pipe(pidLine);
    let pid: number | null = null;
    const describe = (): ExecutionTarget => ({ backend: "ssh", host: this.options.host, ...(pid !== null ? { pid } : {}) });
    const located = pidLine.pid.then((p) => {
      pid = p;
      return describe();
    });
    const control = supervise(
      spec,
      async (signal) => {
        const name = signal === "SIGKILL" ? "KILL" : "TERM";
        channel.signal(name);
        const target = pid;
        if (target === null) return;
        const kill = await this.#shell.exec(`kill -${name} -- -${target} 2>/dev/null || kill -${name} ${target}`).catch(() => null);
        if (kill) {
          kill.stdout.resume();
          kill.stderr.resume();
          kill.stdin.end();
          await kill.closed;
        }
      },
      { killGraceMs: this.options.killGraceMs, closing: this.#closing.signal },
    );
    const result = (async (): Promise<ExecResult> => {
      const exit = await channel.closed;
      control.done();
      return { ...exit, durationMs: Date.now() - started, cancelled: control.cancelled, timedOut: control.timedOut };
    })();
    return { stdout: pidLine, stderr: channel.stderr, result, describe, located };
  }

  async close(): Promise<void> {
    this.#closing.abort();
    this.#shell.close();
  }
}
