import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { BackendUnavailable } from "../backend.js";
import type { SshHostConfig } from "./config.js";
import { type SshAgent as Agent, type IdentityCallback, OpenSSHAgent, type ParsedKey, utils } from "./ssh2.js";

/**
 * How an SSH runner without `--ssh-key` logs in, as ssh would from its configuration: the keys of the agent
 * (IdentityAgent or $SSH_AUTH_SOCK), then each IdentityFile that exists and opens without a passphrase (ssh would ask
 * for one; a runner has nobody to ask: such a key is used through the agent, or not at all). The agent is asked to
 * sign a login and nothing else: it is never forwarded to the host, where a command could use it.
 */
export interface ConfiguredLogin {
  /** The agent's socket, or an agent that offers only the configured identities' keys (IdentitiesOnly). */
  agent?: string | Agent;
  /** Private keys to offer after the agent's, in the configuration's order. */
  keys: Buffer[];
  /** What is tried, for the words of a refusal: "the agent's keys, ~/.ssh/id_ed25519". */
  tried: string;
}

const shortPath = (path: string) => (path.startsWith(`${homedir()}/`) ? `~${path.slice(homedir().length)}` : path);

/** An agent that lists only the keys in `allowed` (public blobs, base64): IdentitiesOnly with an agent. */
class OnlyTheseKeys extends OpenSSHAgent {
  constructor(
    socket: string,
    private readonly allowed: Set<string>,
  ) {
    super(socket);
  }
  override getIdentities(callback: IdentityCallback<ParsedKey>): void {
    const blob = (key: object) => ("getPublicSSH" in key ? (key as ParsedKey).getPublicSSH().toString("base64") : "");
    super.getIdentities((error, keys) =>
      callback(
        error,
        keys?.filter((key) => this.allowed.has(blob(key))),
      ),
    );
  }
}

/** The public key blob (base64) of an OpenSSH public key line, or null. */
function publicBlob(line: string): string | null {
  const parsed = utils.parseKey(line.trim());
  return parsed instanceof Error ? null : (Array.isArray(parsed) ? parsed[0]! : parsed).getPublicSSH().toString("base64");
}

/** The keys and agent `config` logs in with; an error saying what to do when it has none. */
export function configuredLogin(config: SshHostConfig): ConfiguredLogin {
  const keys: Buffer[] = [];
  const names: string[] = [];
  const skipped: string[] = [];
  const publics = new Set<string>();
  for (const file of config.identityFiles) {
    const pub = existsSync(`${file}.pub`) ? publicBlob(readFileSync(`${file}.pub`, "utf8")) : null;
    if (pub) publics.add(pub);
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (error) {
      // ssh's default list names every kind of key; the ones not there are not an error.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") skipped.push(`${shortPath(file)} (${(error as NodeJS.ErrnoException).code})`);
      continue;
    }
    const parsed = utils.parseKey(bytes);
    const key = parsed instanceof Error ? parsed : Array.isArray(parsed) ? parsed[0]! : parsed;
    if (key instanceof Error || !key.isPrivateKey()) {
      skipped.push(`${shortPath(file)} (${key instanceof Error && /passphrase/i.test(key.message) ? "has a passphrase" : "not a private key ssh2 reads"})`);
      continue;
    }
    publics.add(key.getPublicSSH().toString("base64"));
    keys.push(bytes);
    names.push(shortPath(file));
  }
  let agent: ConfiguredLogin["agent"];
  if (config.agent && existsSync(config.agent)) {
    if (!config.identitiesOnly) agent = config.agent;
    else if (publics.size > 0) agent = new OnlyTheseKeys(config.agent, publics);
  }
  if (!agent && keys.length === 0) {
    const where = `ssh ${config.user}@${config.hostname}:${config.port}`;
    const why = [
      config.agent && !existsSync(config.agent)
        ? `no agent at ${config.agent}`
        : config.agent
          ? "the agent holds none of its IdentityFiles (IdentitiesOnly)"
          : "no agent",
      skipped.length ? `skipped ${skipped.join(", ")}` : "no IdentityFile of the ssh configuration exists",
    ];
    throw new BackendUnavailable(`${where}: no key to log in with (${why.join("; ")}) — pass --ssh-key FILE, or add the key to ssh-agent (SSH_AUTH_SOCK)`);
  }
  return { ...(agent ? { agent } : {}), keys, tried: [...(agent ? ["the agent's keys"] : []), ...names].join(", ") };
}
