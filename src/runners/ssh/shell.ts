import type { Readable, Writable } from "node:stream";
import type { TtySize } from "../../protocol/runner.js";
import { BackendUnavailable, firstLine, StartError } from "../backend.js";
import { fingerprint, knownHostsHint, trustedHostKeys } from "./host-keys.js";
import type { ConfiguredLogin } from "./login.js";
import { type AgentAuthMethod, Client, type ClientChannel, type ConnectConfig, type PublicKeyAuthMethod } from "./ssh2.js";

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
  /** The key to log in with (`--ssh-key`); without it, `login`'s agent and keys. */
  privateKey?: Buffer | string;
  passphrase?: string;
  /** What the ssh configuration logs in with (login.ts), when no privateKey is given. */
  login?: ConfiguredLogin;
  /**
   * Accepted host keys, as OpenSSH public-key lines ("ssh-ed25519 AAAA…"). Without
   * them the known_hosts file is used.
   */
  hostKeys?: string[];
  /** Defaults to ~/.ssh/known_hosts. */
  knownHostsFile?: string;
  /** The known_hosts files of the ssh configuration, read together (when knownHostsFile is not given). */
  knownHostsFiles?: string[];
  /** The name the host's keys are under in known_hosts (the configuration's HostKeyAlias), else host and port. */
  hostKeyAlias?: string;
  /** Turns host-key checking off. For tests and throwaway hosts only. */
  insecureSkipHostKeyCheck?: boolean;
  readyTimeoutMs?: number;
}

/** One line for an error that stopped the connection before login. */
function connectFailure(options: SshOptions, port: number, error: Error & { level?: string; code?: string }, deniedKey: Buffer | null): string {
  const where = `ssh ${options.host}:${port}`;
  if (deniedKey) {
    const fix = options.hostKeys ? "it is not the key --ssh-host-key gave; pass the host's own public key file" : knownHostsHint(options);
    return `${where}: host key not trusted (${fingerprint(deniedKey)}) — ${fix}`;
  }
  if (error.level === "client-authentication") {
    const keys = options.privateKey !== undefined ? "the public half of --ssh-key" : `one of the keys tried (${options.login?.tried ?? "none"})`;
    return `ssh ${options.username}@${options.host}:${port}: login refused — check --ssh-user, and that ${keys} is in that user's ~/.ssh/authorized_keys`;
  }
  if (error.level === "client-timeout")
    return `${where}: no SSH handshake within ${(options.readyTimeoutMs ?? 10_000) / 1000} s — check --ssh-host and --ssh-port`;
  if (error.code === "ECONNREFUSED") return `${where}: connection refused — check --ssh-host and --ssh-port, and that sshd runs there`;
  if (error.code === "ENOTFOUND" || error.code === "EAI_AGAIN") return `${where}: host name not found — check --ssh-host`;
  return `${where}: ${firstLine(error)}`;
}

/** How ssh2 logs in: the key given, else the configuration's agent and keys, in that order; the agent is never forwarded. */
function loginConfig(options: SshOptions): Pick<ConnectConfig, "privateKey" | "passphrase" | "authHandler"> {
  if (options.privateKey !== undefined) return { privateKey: options.privateKey, ...(options.passphrase ? { passphrase: options.passphrase } : {}) };
  const username = options.username;
  const agent: AgentAuthMethod[] = options.login?.agent ? [{ type: "agent", username, agent: options.login.agent }] : [];
  const keys = (options.login?.keys ?? []).map((key): PublicKeyAuthMethod => ({ type: "publickey", username, key }));
  return { authHandler: [...agent, ...keys] };
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
          ...loginConfig(options),
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
