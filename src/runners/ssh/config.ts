import { execFile } from "node:child_process";
import { homedir, hostname as localHostname, userInfo } from "node:os";
import { BackendUnavailable, firstLine } from "../backend.js";

/**
 * Where an SSH runner connects and as whom, as OpenSSH would: `ssh -G HOST` prints the configuration ssh computes for
 * HOST (~/.ssh/config and /etc/ssh/ssh_config, their Host and Match blocks, Include, and OpenSSH's defaults) without
 * connecting. So `--ssh-host build` reaches the host `ssh build` reaches: its HostName, Port, User, IdentityFile,
 * IdentityAgent and known-hosts files. The runner's flags override what it prints.
 */
export interface SshHostConfig {
  hostname: string;
  port: number;
  user: string;
  /** Private key files to try, in order, with ssh's tokens and `~` expanded (those that do not exist are skipped). */
  identityFiles: string[];
  /** Only the configured identities, not every key an agent holds (IdentitiesOnly). */
  identitiesOnly: boolean;
  /** The agent's socket (IdentityAgent, else $SSH_AUTH_SOCK); null: none. */
  agent: string | null;
  /** known_hosts files, the user's then the system's. */
  knownHostsFiles: string[];
  /** The name host keys are looked up under (HostKeyAlias), else the host name. */
  hostKeyAlias: string | null;
  /** Set when the host is reached through a jump host or a proxy program, which the runner does not do. */
  proxy: string | null;
}

/** `ssh -G`'s lines as keyword → values (keywords lowercased; a keyword given more than once keeps every value). */
export function parseSshG(text: string): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const at = line.indexOf(" ");
    if (at <= 0) continue;
    const key = line.slice(0, at).toLowerCase();
    values.set(key, [...(values.get(key) ?? []), line.slice(at + 1).trim()]);
  }
  return values;
}

/** ssh_config(5)'s TOKENS and `~` in a path, for the tokens a file name may hold; an unknown token is left as it is. */
export function expandSshPath(path: string, at: { alias: string; hostname: string; port: number; user: string }): string {
  const home = homedir();
  // The password database is read only for the tokens that need it (a container's uid may have no entry).
  const local = () => userInfo();
  const expanded = path.replace(/%(.)/g, (token, letter: string) => {
    switch (letter) {
      case "%":
        return "%";
      case "d":
        return home;
      case "h":
        return at.hostname;
      case "i":
        return String(local().uid);
      case "l":
        return localHostname().split(".")[0]!;
      case "L":
        return localHostname();
      case "n":
        return at.alias;
      case "p":
        return String(at.port);
      case "r":
        return at.user;
      case "u":
        return local().username;
      default:
        return token;
    }
  });
  return expanded === "~" ? home : expanded.startsWith("~/") ? `${home}${expanded.slice(1)}` : expanded;
}

/** The agent socket IdentityAgent names (`SSH_AUTH_SOCK` and `$VAR` read from `env`, `none` none), expanded. */
function agentSocket(value: string | undefined, env: NodeJS.ProcessEnv, at: Parameters<typeof expandSshPath>[1]): string | null {
  if (value === undefined || value === "SSH_AUTH_SOCK") return env.SSH_AUTH_SOCK || null;
  if (value === "none") return null;
  if (value.startsWith("$")) return env[value.slice(1)] || null;
  return expandSshPath(value, at);
}

/** The configuration `ssh -G` gives for `alias`, read into what the runner uses. */
export function hostConfigFrom(alias: string, text: string, env: NodeJS.ProcessEnv = process.env): SshHostConfig {
  const values = parseSshG(text);
  const one = (key: string) => values.get(key)?.[0];
  const hostname = one("hostname") ?? alias;
  const port = Number(one("port") ?? 22);
  const user = one("user") ?? userInfo().username;
  const at = { alias, hostname, port, user };
  const files = (key: string) => (values.get(key) ?? []).flatMap((v) => v.split(/\s+/)).filter((v) => v && v !== "none");
  const proxyJump = one("proxyjump");
  const proxyCommand = one("proxycommand");
  return {
    hostname,
    port,
    user,
    identityFiles: files("identityfile").map((file) => expandSshPath(file, at)),
    identitiesOnly: one("identitiesonly") === "yes",
    agent: agentSocket(one("identityagent"), env, at),
    knownHostsFiles: [...files("userknownhostsfile"), ...files("globalknownhostsfile")].map((file) => expandSshPath(file, at)),
    hostKeyAlias: one("hostkeyalias") ?? null,
    proxy: proxyJump && proxyJump !== "none" ? `ProxyJump ${proxyJump}` : proxyCommand && proxyCommand !== "none" ? `ProxyCommand ${proxyCommand}` : null,
  };
}

/** The program asked (`ssh`); tests give another. */
export interface SshConfigOptions {
  /** An ssh_config file to read instead of ~/.ssh/config and /etc/ssh/ssh_config (`ssh -F`). */
  configFile?: string;
  program?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * What OpenSSH's configuration says of `alias` (`ssh -G`), or null when there is no `ssh` program to ask (the runner
 * then takes its flags alone). A configuration ssh refuses (a bad line, a -F file it cannot read) is an error naming it.
 */
export async function readSshConfig(alias: string, options: SshConfigOptions = {}): Promise<SshHostConfig | null> {
  const args = [...(options.configFile ? ["-F", options.configFile] : []), "-G", "--", alias];
  const program = options.program ?? "ssh";
  const env = options.env ?? process.env;
  return new Promise((resolve, reject) => {
    execFile(program, args, { env, timeout: 10_000, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if ((error as NodeJS.ErrnoException | null)?.code === "ENOENT") return resolve(null);
      if (error) {
        // ssh ends its lines with \r\n; what it quotes of a configuration is printed without control characters.
        const said = stderr
          .split("\n")
          .map((line) => line.replace(/[\x00-\x1f\x7f]/g, "").trim())
          .filter((line) => line && !line.startsWith("Pseudo-terminal"));
        const fix = options.configFile
          ? `check --ssh-config ${options.configFile}`
          : `fix the ssh configuration (\`ssh -G ${alias}\` says the same), or pass --ssh-config FILE`;
        return reject(new BackendUnavailable(`ssh -G ${alias}: ${said.at(-1) ?? firstLine(error)} — ${fix}`));
      }
      resolve(hostConfigFrom(alias, stdout, env));
    });
  });
}
