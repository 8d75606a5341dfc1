import { resolve } from "node:path";
import { BackendUnavailable } from "../backend.js";
import { type BackendRow, type FlagValues, need, positiveInt, readFlagFile, stringFlag } from "../flags.js";
import type { ConfiguredLogin } from "./login.js";

/**
 * Where and as whom the runner logs in: the flags, and for what they leave out, OpenSSH's configuration of the host
 * (`ssh -G`, config.ts) — its HostName, Port, User, known_hosts files and HostKeyAlias, and without `--ssh-key` its
 * agent and IdentityFiles (login.ts). Without an `ssh` program to ask, the flags alone, as before.
 */
async function reachedAs(alias: string, values: FlagValues, needsLogin: boolean) {
  const configFile = stringFlag(values, "ssh-config");
  const { readSshConfig } = await import("./config.js");
  const config = await readSshConfig(alias, configFile ? { configFile } : {});
  if (configFile && !config) throw new Error(`--ssh-config ${configFile}: no ssh program here to read it with (install OpenSSH's client)`);
  const port = positiveInt("ssh-port", stringFlag(values, "ssh-port"), config?.port ?? 22);
  const username = stringFlag(values, "ssh-user") ?? config?.user;
  if (!config) {
    // No ssh to ask: as before the configuration was read, each of these is a flag to give.
    need("ssh-user", username);
    if (needsLogin) need("ssh-key", undefined);
  }
  if (config?.proxy)
    throw new BackendUnavailable(
      `ssh ${alias}: the ssh configuration reaches it through ${config.proxy}, which spool runner does not follow — run the runner where ${config.hostname} is reached directly, or forward its port and pass --ssh-host and --ssh-port`,
    );
  const host = config?.hostname ?? alias;
  let login: ConfiguredLogin | undefined;
  if (needsLogin && config) login = (await import("./login.js")).configuredLogin({ ...config, user: username!, port });
  return {
    host,
    port,
    username: username!,
    ...(login ? { login } : {}),
    ...(config?.knownHostsFiles.length ? { knownHostsFiles: config.knownHostsFiles } : {}),
    ...(config?.hostKeyAlias ? { hostKeyAlias: config.hostKeyAlias } : {}),
  };
}

/** The SSH backend's row of src/runners/backends.ts: commands on another machine, over one SSH connection. */
export const SSH = {
  flags: {
    "ssh-host": { type: "string", arg: "HOST", help: "the SSH server, or a Host of ~/.ssh/config", heading: " ssh:" },
    "ssh-port": { type: "string", arg: "PORT", help: "its port                [ssh config's, else 22]" },
    "ssh-user": { type: "string", arg: "USER", help: "the login               [ssh config's, else yours]" },
    "ssh-key": { type: "string", arg: "PATH", help: "the private key         [ssh-agent, ssh config's IdentityFile]" },
    "ssh-config": { type: "string", arg: "PATH", help: "the ssh config to read  [~/.ssh/config]" },
    "ssh-host-key": { type: "string", arg: "PATH", help: "accepted host public key (default: known_hosts)" },
    "ssh-known-hosts": { type: "string", arg: "PATH", help: "the known_hosts file to check it in (default: ssh config's UserKnownHostsFile)" },
    "ssh-insecure": { type: "boolean", help: "do not check the host key (tests, throwaway hosts only)" },
  },
  async build(values, common) {
    const hostKey = stringFlag(values, "ssh-host-key");
    const knownHostsFile = stringFlag(values, "ssh-known-hosts");
    const alias = need("ssh-host", stringFlag(values, "ssh-host"));
    const key = stringFlag(values, "ssh-key");
    // Read before anything connects: a flag names a file that cannot be read, the runner says so and stops.
    const privateKey = key === undefined ? undefined : readFlagFile("ssh-key", key);
    const { SshBackend } = await import("./ssh.js");
    const reached = await reachedAs(alias, values, privateKey === undefined);
    return new SshBackend({
      ...reached,
      ...(privateKey !== undefined ? { privateKey } : {}),
      ...(hostKey
        ? {
            hostKeys: readFlagFile("ssh-host-key", hostKey)
              .toString("utf8")
              .split("\n")
              .filter((l) => l.trim()),
          }
        : {}),
      ...(knownHostsFile ? { knownHostsFile } : {}),
      insecureSkipHostKeyCheck: Boolean(values["ssh-insecure"]),
      killGraceMs: common.killGraceMs,
      sandbox: common.sandbox,
      // Every command runs in --root, else the login directory.
      workspace: common.root ?? "login",
    });
  },
  // The SSH runner's key (wherever it is kept, ~/.ssh or not) is a credential too.
  secrets: (values) => {
    const key = stringFlag(values, "ssh-key");
    return key ? [resolve(key)] : [];
  },
} as const satisfies BackendRow;
