import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { Client, type ClientChannel } from "ssh2";
import type { TtySize } from "../protocol/runner.js";
import { SANDBOX_MODES } from "../protocol/sandbox.js";
import { type Backend, BackendUnavailable, type ExecResult, type ExecSpec, type Execution, type ExecutionTarget, firstLine, StartError } from "./backend.js";
import { type ContainerInfo, pidNamespaceArgs } from "./container.js";
import { streamControl, TTY_TERM } from "./control.js";
import {
  BWRAP_DETAIL,
  bwrapCommand,
  noSandbox,
  PROBE_COMMAND,
  SANDBOX_OFF,
  SANDBOX_SIGNALS,
  type SandboxInfo,
  type SandboxMode,
  sandboxOf,
  sandboxResult,
} from "./sandbox.js";
import { shellScript } from "./shell.js";
import { PidLine, type RemoteContainer, type RemoteSandbox, remoteScript, shellQuote } from "./streams.js";
import { supervise, withManyListeners } from "./supervise.js";

/** One remote command as this backend sees it; `ssh2Transport` provides it over ssh2. */
export interface RemoteChannel {
  stdout: Readable;
  stderr: Readable;
  stdin: Writable;
  /** Sends a signal over the channel ("TERM", "KILL"); servers may ignore it. */
  signal(name: string): void;
  /** Resizes the channel's terminal (a channel opened with `pty`). */
  setWindow(size: TtySize): void;
  /** Resolves when the channel has closed; exit fields are null when the server sent none. */
  closed: Promise<{ exitCode: number | null; signal: string | null }>;
}

/** The narrow SSH interface the backend needs: run a command line on one reused connection. */
export interface RemoteShell {
  /** Runs a command line; with `pty`, under a pseudo-terminal of that size and type. */
  exec(commandLine: string, options?: { pty?: TtySize & { term: string } }): Promise<RemoteChannel>;
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

const knownHostsHint = (options: SshOptions) => `add it to ${options.knownHostsFile ?? "~/.ssh/known_hosts"} or pass --ssh-host-key FILE`;

/** "ED25519 SHA256:…", as ssh-keygen -l prints a key. */
export function fingerprint(blob: Buffer): string {
  const typeLength = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type = blob.subarray(4, 4 + typeLength).toString("latin1");
  const name = type
    .replace(/^ssh-/, "")
    .replace(/^ecdsa-sha2-nistp\d+$/, "ecdsa")
    .toUpperCase();
  return `${name || "key"} SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/**
 * The host keys to trust: the explicit ones, else known_hosts' lines for host:port. Throws
 * `BackendUnavailable` saying how to fix it when there are none.
 */
function trustedHostKeys(options: SshOptions, port: number): { accepted: Set<string>; revoked: Set<string>; source: string } {
  const where = `ssh ${options.host}:${port}`;
  if (options.hostKeys) {
    const accepted = new Set(options.hostKeys.map((line) => line.trim().split(/\s+/)[1] ?? "").filter((blob) => blob));
    if (accepted.size === 0)
      throw new BackendUnavailable(`${where}: the host key given holds no "TYPE KEY" line — pass the host's public key file with --ssh-host-key`);
    return { accepted, revoked: new Set(), source: "the host key given" };
  }
  const file = options.knownHostsFile ?? join(homedir(), ".ssh", "known_hosts");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new BackendUnavailable(`${where}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? firstLine(error)}) — ${knownHostsHint(options)}`);
  }
  const keys = knownHostKeys(text, options.host, port);
  if (keys.accepted.size === 0) throw new BackendUnavailable(`${where}: no key for this host in ${file} — ${knownHostsHint(options)}`);
  return { ...keys, source: file };
}

/** One line for an error that stopped the connection before login. */
function connectFailure(options: SshOptions, port: number, error: Error & { level?: string; code?: string }, deniedKey: Buffer | null): string {
  const where = `ssh ${options.host}:${port}`;
  if (deniedKey) {
    const fix = options.hostKeys ? "it is not the key --ssh-host-key gave; pass the host's own public key file" : knownHostsHint(options);
    return `${where}: host key not trusted (${fingerprint(deniedKey)}) — ${fix}`;
  }
  if (error.level === "client-authentication") {
    return `ssh ${options.username}@${options.host}:${port}: login refused — check --ssh-user, and that the public half of --ssh-key is in that user's ~/.ssh/authorized_keys`;
  }
  if (error.level === "client-timeout")
    return `${where}: no SSH handshake within ${(options.readyTimeoutMs ?? 10_000) / 1000} s — check --ssh-host and --ssh-port`;
  if (error.code === "ECONNREFUSED") return `${where}: connection refused — check --ssh-host and --ssh-port, and that sshd runs there`;
  if (error.code === "ENOTFOUND" || error.code === "EAI_AGAIN") return `${where}: host name not found — check --ssh-host`;
  return `${where}: ${firstLine(error)}`;
}

/** Opens (and reopens after a drop) one ssh2 connection, shared by every command. */
export function ssh2Shell(options: SshOptions): RemoteShell {
  const port = options.port ?? 22;
  let connection: Promise<Client> | null = null;
  const connect = () =>
    new Promise<Client>((resolve, reject) => {
      // Read at each connection: a known_hosts fixed while the runner waits is picked up.
      let keys: ReturnType<typeof trustedHostKeys> | null = null;
      if (!options.insecureSkipHostKeyCheck) {
        try {
          keys = trustedHostKeys(options, port);
        } catch (error) {
          return reject(error);
        }
      }
      let denied: Buffer | null = null;
      const verify = (key: Buffer) => {
        const blob = key.toString("base64");
        if (!keys || (keys.accepted.has(blob) && !keys.revoked.has(blob))) return true;
        denied = key;
        return false;
      };
      const client = new Client();
      let ready = false;
      client.once("ready", () => {
        ready = true;
        resolve(client);
      });
      client.on("error", (error) => {
        if (!ready) reject(new BackendUnavailable(connectFailure(options, port, error, denied)));
      });
      client.once("close", () => {
        connection = null;
      });
      try {
        client.connect({
          host: options.host,
          port,
          username: options.username,
          privateKey: options.privateKey,
          ...(options.passphrase ? { passphrase: options.passphrase } : {}),
          hostVerifier: verify,
          readyTimeout: options.readyTimeoutMs ?? 10_000,
          keepaliveInterval: 15_000,
        });
      } catch (error) {
        // ssh2 parses the key before connecting: an unreadable or encrypted key fails here.
        reject(new BackendUnavailable(`ssh: the private key cannot be used (${firstLine(error)}) — check --ssh-key`));
      }
    });
  return {
    async exec(commandLine, options = {}) {
      connection ??= connect().catch((error) => {
        connection = null;
        throw error;
      });
      const client = await connection;
      // The exit listener is attached inside the callback: a fast command's exit-status and close can be
      // processed in the same read as the exec reply, before any promise continuation runs.
      const { channel, closed } = await new Promise<{ channel: ClientChannel; closed: RemoteChannel["closed"] }>((resolve, reject) =>
        client.exec(commandLine, options.pty ? { pty: { cols: options.pty.cols, rows: options.pty.rows, term: options.pty.term } } : {}, (error, ch) => {
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
      return {
        stdout: channel,
        stderr: channel.stderr,
        stdin: channel,
        signal: (name) => channel.signal(name),
        setWindow: ({ cols, rows }) => channel.setWindow(rows, cols, 0, 0),
        closed,
      };
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
  #probe: Promise<{ info: SandboxInfo; bwrap?: string; resetSignals?: string; unreachable?: boolean }> | null = null;

  #sandbox(): Promise<{ info: SandboxInfo; bwrap?: string; resetSignals?: string }> {
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

  /** The remote PID namespace a full command runs in: probed once, again only when the host could not be reached. */
  #containerProbe: Promise<{ info: ContainerInfo; contain?: RemoteContainer; unreachable?: boolean }> | null = null;

  #container(): Promise<{ info: ContainerInfo; contain?: RemoteContainer }> {
    return (this.#containerProbe ??= this.#probeContainer().then((answer) => {
      if (answer.unreachable) this.#containerProbe = null;
      return answer;
    }));
  }

  async container(): Promise<ContainerInfo> {
    return (await this.#container()).info;
  }

  /**
   * Whether bwrap on the remote host makes a PID namespace for the login user with the whole filesystem bound
   * through (SPEC §7 "Stopped means stopped"). cgroups are not used on an SSH host: without bwrap there, nothing
   * holds a command's processes, and the runner says so.
   */
  async #probeContainer(): Promise<{ info: ContainerInfo; contain?: RemoteContainer; unreachable?: boolean }> {
    const host = `${this.options.username}@${this.options.host}`;
    const none = (why: string): ContainerInfo => ({
      kind: "none",
      diesWithRunner: false,
      detail:
        `no container for commands on ${host} (${why}): a process that leaves the command's process group escapes a cancel, and commands may outlive a runner that is killed`.slice(
          0,
          500,
        ),
    });
    const probe = [
      'b=$(command -v bwrap) || { echo "missing"; exit 0; }',
      `env -i "$b" ${pidNamespaceArgs({ env: {}, cwd: "/", command: "true" }).map(shellQuote).join(" ")} 2>&1 && echo "ok=$b"`,
      `e=$(command -v env) && "$e" --default-signal=${SANDBOX_SIGNALS.join(",")} /bin/sh -c true 2>/dev/null && echo "env=$e"`,
    ].join("; ");
    let output = "";
    try {
      const channel = await this.#shell.exec(probe);
      channel.stdin.end();
      channel.stderr.resume();
      for await (const chunk of channel.stdout) output += String(chunk);
      await channel.closed;
    } catch (error) {
      return { info: none(`could not look for bubblewrap: ${firstLine(error)}`), unreachable: true };
    }
    const lines = output.trim().split("\n");
    if (lines[0] === "missing") return { info: none("bubblewrap is not installed there") };
    const bwrap = lines.find((line) => line.startsWith("ok=/"))?.slice(3);
    if (!bwrap) return { info: none(`bubblewrap cannot make a PID namespace there: ${lines[0] ?? "it failed"}`) };
    const resetSignals = lines.find((line) => line.startsWith("env=/"))?.slice(4);
    return {
      info: {
        kind: "pid-namespace",
        diesWithRunner: true,
        detail: `every command in a PID namespace of its own on ${host} (bubblewrap, --die-with-parent): its processes die with the command, its cancel and the runner's SSH session; cgroups are not used on SSH hosts`,
      },
      contain: { bwrap, ...(resetSignals ? { resetSignals } : {}) },
    };
  }

  /** Spool controls nothing on the remote host but what it runs: read-only work needs bubblewrap there, working for the login user. */
  async #probeSandbox(): Promise<{ info: SandboxInfo; bwrap?: string; resetSignals?: string; unreachable?: boolean }> {
    if (this.options.sandbox === "off") return { info: noSandbox(SANDBOX_OFF) };
    const host = `${this.options.username}@${this.options.host}`;
    const probe = [
      'b=$(command -v bwrap) || { echo "missing"; exit 0; }',
      'echo "$b"',
      `env -i "$b" ${bwrapCommand("/", PROBE_COMMAND).map(shellQuote).join(" ")} 2>&1 && echo ok`,
      // An env that resets signals lets the command, not bwrap's waiting process, have them (SANDBOX_SIGNALS).
      `e=$(command -v env) && "$e" --default-signal=${SANDBOX_SIGNALS.join(",")} /bin/sh -c true 2>/dev/null && echo "env=$e"`,
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
    const [path = "", ...lines] = output.trim().split("\n");
    const resetter = lines.at(-1)?.startsWith("env=/") ? lines.pop()!.slice(4) : undefined;
    const rest = lines;
    if (path === "missing" || !path.startsWith("/")) return { info: noSandbox(`ssh: bubblewrap is not installed on ${host}; read-only work is refused there`) };
    if (rest.at(-1) !== "ok") {
      return { info: noSandbox(`ssh: bubblewrap on ${host} cannot build the sandbox: ${rest[0] ?? "it failed"}`.slice(0, 480)) };
    }
    return {
      info: { kind: "bwrap", readOnly: true, detail: `${BWRAP_DETAIL}, on ${host}`, modes: [...SANDBOX_MODES] },
      bwrap: path,
      ...(resetter ? { resetSignals: resetter } : {}),
    };
  }

  describe(): string {
    return `ssh: ${this.options.username}@${this.options.host}:${this.options.port ?? 22}`;
  }

  /** Connects (host key, login) and runs a trivial command, within the connection's own timeout and as long again for the command. */
  async check(): Promise<void> {
    const who = `ssh ${this.options.username}@${this.options.host}:${this.options.port ?? 22}`;
    const limitMs = this.options.readyTimeoutMs ?? 10_000;
    const channel = await this.#shell.exec("echo spool-ok").catch((error: unknown) => {
      throw error instanceof BackendUnavailable ? error : new BackendUnavailable(`${who}: logged in, but cannot run a command (${firstLine(error)})`);
    });
    channel.stdin.end();
    let output = "";
    let errors = "";
    channel.stdout.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-200)));
    channel.stderr.on("data", (d: Buffer) => (errors = (errors + d.toString()).slice(-200)));
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      channel.closed,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), limitMs);
      }),
    ]);
    clearTimeout(timer);
    if (exit === null) {
      channel.signal("KILL");
      throw new BackendUnavailable(`${who}: logged in, but "echo" did not finish within ${limitMs / 1000} s — check the user's login shell and profile`);
    }
    if (exit.exitCode !== 0 || !output.includes("spool-ok")) {
      const said = errors.trim().split("\n").at(-1) ?? "";
      throw new BackendUnavailable(
        `${who}: logged in, but a trivial command failed (exit ${exit.exitCode ?? exit.signal ?? "unknown"}${said ? `: ${said}` : ""}) — check the user's login shell`,
      );
    }
  }

  async start(spec: ExecSpec): Promise<Execution> {
    const started = Date.now();
    const wanted = sandboxOf(spec);
    let sandbox: RemoteSandbox | undefined;
    if (wanted) {
      const probed = await this.#sandbox();
      if (!probed.bwrap) throw new StartError(`${wanted.mode} commands are refused on this runner: it has no ${wanted.mode} sandbox (${probed.info.detail})`);
      sandbox = { ...wanted, bwrap: probed.bwrap, ...(probed.resetSignals ? { resetSignals: probed.resetSignals } : {}) };
    }
    // A full command's container: a PID namespace of its own on the remote host, where bwrap there can make one.
    const contain = sandbox ? undefined : (await this.#container()).contain;
    // A clean environment: the remote login's PATH, HOME, LANG, TERM and what the runner was given; never the login's whole environment.
    const channel = await this.#shell.exec(
      remoteScript(shellScript(spec.command), spec.cwd, spec.env, {
        ...(sandbox ? { sandbox } : {}),
        ...(contain ? { contain } : {}),
        ...(spec.workspace ? { workspace: spec.workspace } : {}),
      }),
      // The pty's type reaches sshd and the login shell, outside any sandbox: always ours; the proposal's TERM is set inside.
      spec.tty ? { pty: { ...spec.tty, term: TTY_TERM } } : {},
    );
    // Interactive work keeps stdin open for stream/input; otherwise it gets its bytes, or nothing, and ends.
    const interactive = (spec.interactive || spec.tty) && !spec.stdin;
    if (!interactive) channel.stdin.end(spec.stdin ?? undefined);
    const pidLine = new PidLine();
    channel.stdout.pipe(pidLine);
    // A sandboxed command the wrapper refused (its directory or workspace, as they resolve now): nothing ran, the reason follows.
    if (sandbox && (await pidLine.pid) === null && pidLine.refused) {
      const said: Buffer[] = [];
      pidLine.on("data", (chunk: Buffer) => said.push(chunk));
      channel.stderr.on("data", (chunk: Buffer) => said.push(chunk));
      await Promise.all([channel.closed, finished(channel.stderr).catch(() => undefined), finished(pidLine).catch(() => undefined)]);
      throw new StartError(`Cannot start the command: ${Buffer.concat(said).toString().trim() || "the runner refused it"}`);
    }
    let pid: number | null = null;
    const describe = (): ExecutionTarget => ({ backend: "ssh", host: this.options.host, ...(pid !== null ? { pid } : {}) });
    const located = pidLine.pid.then((p) => {
      pid = p;
      return describe();
    });
    /** Signals the command's process group over a second channel (servers may ignore channel signals); no `--`, which busybox's kill refuses. */
    const signalGroup = async (name: string) => {
      const target = pid ?? (await located).pid;
      if (target === undefined) return;
      const kill = await this.#shell.exec(`kill -${name} -${target} 2>/dev/null || kill -${name} ${target}`).catch(() => null);
      if (kill) {
        kill.stdout.resume();
        kill.stderr.resume();
        kill.stdin.end();
        await kill.closed;
      }
    };
    const control = supervise(
      spec,
      async (signal) => {
        const name = signal === "SIGKILL" ? "KILL" : "TERM";
        channel.signal(name);
        if (pid !== null) await signalGroup(name);
      },
      { killGraceMs: this.options.killGraceMs, closing: this.#closing.signal },
    );
    const poke = interactive
      ? streamControl(
          channel.stdin,
          { signal: signalGroup, ...(spec.tty ? { resize: async (size: TtySize) => channel.setWindow(size) } : {}) },
          { tty: Boolean(spec.tty) },
        )
      : undefined;
    const result = (async (): Promise<ExecResult> => {
      const exit = await channel.closed;
      // The channel closes once sshd sent everything; the output is delivered once both streams ended (what a
      // consumer awaiting the result may rely on, as with the other backends).
      await Promise.all([finished(pidLine).catch(() => undefined), finished(channel.stderr).catch(() => undefined)]);
      control.done();
      const ended = { ...exit, durationMs: Date.now() - started, cancelled: control.cancelled, timedOut: control.timedOut };
      return sandbox || contain ? sandboxResult(ended) : ended;
    })();
    return { stdout: pidLine, stderr: channel.stderr, result, describe, located, ...(poke ? { control: poke } : {}) };
  }

  async close(): Promise<void> {
    this.#closing.abort();
    this.#shell.close();
  }
}
