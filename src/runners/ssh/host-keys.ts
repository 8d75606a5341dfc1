import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { BackendUnavailable, firstLine } from "../backend.js";

/** Which host keys an SSH runner trusts: known_hosts lines, or the keys it was given; fingerprints as ssh-keygen prints them. */

/** What of the SSH options (shell.ts) says which host keys to trust. */
export interface HostKeyOptions {
  host: string;
  hostKeys?: string[];
  knownHostsFile?: string;
  /** The ssh configuration's known_hosts files (the user's, then the system's), when knownHostsFile is not given. */
  knownHostsFiles?: string[];
  /** The name the keys are under instead of host and port (HostKeyAlias). */
  hostKeyAlias?: string;
}

/** Key blobs (base64 field) that known_hosts lines accept for host:port (for `alias` alone, as ssh's HostKeyAlias). */
export function knownHostKeys(text: string, host: string, port: number, alias?: string): { accepted: Set<string>; revoked: Set<string> } {
  const names = alias ? [alias] : port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`];
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

/** The known_hosts files to read: the one given, else the configuration's, else ~/.ssh/known_hosts. */
const knownHostsFiles = (options: HostKeyOptions): string[] =>
  options.knownHostsFile ? [options.knownHostsFile] : options.knownHostsFiles?.length ? options.knownHostsFiles : [join(homedir(), ".ssh", "known_hosts")];

export const knownHostsHint = (options: HostKeyOptions) =>
  `add it to ${options.knownHostsFile ?? options.knownHostsFiles?.[0] ?? "~/.ssh/known_hosts"} or pass --ssh-host-key FILE`;

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
export function trustedHostKeys(options: HostKeyOptions, port: number): { accepted: Set<string>; revoked: Set<string>; source: string } {
  const where = `ssh ${options.host}:${port}`;
  if (options.hostKeys) {
    const accepted = new Set(options.hostKeys.map((line) => line.trim().split(/\s+/)[1] ?? "").filter((blob) => blob));
    if (accepted.size === 0)
      throw new BackendUnavailable(`${where}: the host key given holds no "TYPE KEY" line — pass the host's public key file with --ssh-host-key`);
    return { accepted, revoked: new Set(), source: "the host key given" };
  }
  const files = knownHostsFiles(options);
  const texts: string[] = [];
  let unread: string | null = null;
  for (const file of files) {
    try {
      texts.push(readFileSync(file, "utf8"));
    } catch (error) {
      // Of the configuration's files (the user's and the system's, each with a second name), those absent are skipped.
      unread ??= `${file} (${(error as NodeJS.ErrnoException).code ?? firstLine(error)})`;
    }
  }
  if (texts.length === 0) throw new BackendUnavailable(`${where}: cannot read ${unread} — ${knownHostsHint(options)}`);
  const keys = knownHostKeys(texts.join("\n"), options.host, port, options.hostKeyAlias);
  const named = files.length === 1 ? files[0]! : files.join(", ");
  const under = options.hostKeyAlias ? ` under its HostKeyAlias ${options.hostKeyAlias}` : "";
  if (keys.accepted.size === 0) throw new BackendUnavailable(`${where}: no key for this host${under} in ${named} — ${knownHostsHint(options)}`);
  return { ...keys, source: named };
}
