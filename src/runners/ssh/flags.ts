import { resolve } from "node:path";
import { type BackendRow, need, positiveInt, readFlagFile, stringFlag } from "../flags.js";

/** The SSH backend's row of src/runners/backends.ts: commands on another machine, over one SSH connection. */
export const SSH = {
  flags: {
    "ssh-host": { type: "string", arg: "HOST", help: "the SSH server", heading: " ssh:" },
    "ssh-port": { type: "string", arg: "PORT", help: "its port                                       [22]" },
    "ssh-user": { type: "string", arg: "USER", help: "the login" },
    "ssh-key": { type: "string", arg: "PATH", help: "the private key" },
    "ssh-host-key": { type: "string", arg: "PATH", help: "accepted host public key (default: ~/.ssh/known_hosts)" },
    "ssh-known-hosts": { type: "string", arg: "PATH", help: "the known_hosts file to check it in (default: ~/.ssh/known_hosts)" },
    "ssh-insecure": { type: "boolean", help: "do not check the host key (tests, throwaway hosts only)" },
  },
  async build(values, common) {
    const hostKey = stringFlag(values, "ssh-host-key");
    const knownHostsFile = stringFlag(values, "ssh-known-hosts");
    const { SshBackend } = await import("./ssh.js");
    return new SshBackend({
      host: need("ssh-host", stringFlag(values, "ssh-host")),
      port: positiveInt("ssh-port", stringFlag(values, "ssh-port"), 22),
      username: need("ssh-user", stringFlag(values, "ssh-user")),
      privateKey: readFlagFile("ssh-key", need("ssh-key", stringFlag(values, "ssh-key"))),
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
