/**
 * Where an accepted command runs (SPEC §7 Runners, "Sandbox modes"). Every
 * client shows a proposal's mode before the decision.
 *
 * - `read-only`: the filesystem read-only, a private /tmp, the server's home
 *   hidden, its own PID namespace, no network (the `env` tool, `ask` runs);
 * - `workspace-write`: the project root writable and everything else
 *   read-only, a private /tmp, the server's home hidden, its own PID
 *   namespace, network on unless configured off (the default for `sh` where
 *   the runner has a sandbox);
 * - `full`: no sandbox; only by explicit configuration or a per-proposal flag.
 *
 * Plain TypeScript: a client that only shows these (every `spool` command) loads no zod; the schemas are in
 * sandbox-schemas.ts.
 */
export const SANDBOX_MODES = ["read-only", "workspace-write", "full"] as const;
export type SandboxModeName = (typeof SANDBOX_MODES)[number];

/** A sandboxed command's network: a namespace of its own (outbound only), the runner machine's, or none. */
export const NETWORK_KINDS = ["own", "shared", "none"] as const;
export type NetworkKind = (typeof NETWORK_KINDS)[number];

/**
 * A proposal's network fact: a NetworkKind, or `allowlist` (a sandbox whose one way out is an egress proxy that
 * connects only to the hosts of its list: src/protocol/egress.ts).
 */
export const NETWORK_FACTS = [...NETWORK_KINDS, "allowlist"] as const;
export type NetworkFact = (typeof NETWORK_FACTS)[number];

/** One line a person reads next to the mode's name. */
export const SANDBOX_MODE_WORDS: Record<SandboxModeName, string> = {
  "read-only": "read-only sandbox: nothing can be written, no network",
  "workspace-write": "sandbox: only the project directory is writable",
  full: "no sandbox: the command can do anything the runner's user can; as root, the kernel's settings too",
};

/**
 * Variables that make the dynamic loader or the C library load code or data
 * named by the value (preloaded libraries, library paths, character-set
 * modules, tunables). A proposal may not set them: whatever starts the
 * command (a sandbox's launcher, the shell) would obey them before the
 * command's own first line runs.
 */
const LOADER_PREFIXES = ["LD_", "DYLD_"];
const LOADER_NAMES = new Set(["GCONV_PATH", "GLIBC_TUNABLES", "GETCONF_DIR", "HOSTALIASES", "LOCPATH", "MALLOC_TRACE", "NLSPATH", "RESOLV_HOST_CONF"]);

/** Whether a proposal may not set this variable (see LOADER_PREFIXES, LOADER_NAMES). */
export function isLoaderVariable(name: string): boolean {
  const upper = name.toUpperCase();
  return LOADER_PREFIXES.some((prefix) => upper.startsWith(prefix)) || LOADER_NAMES.has(upper);
}

/** The names of `env` a proposal may not set, sorted; empty when there are none. */
export function loaderVariables(env: Record<string, string> | undefined): string[] {
  return Object.keys(env ?? {})
    .filter(isLoaderVariable)
    .sort();
}

/** What a person reads when a proposal sets loader variables. */
export const loaderVariablesMessage = (names: readonly string[]) =>
  `env may not set ${names.join(", ")}: variables that make the loader or the C library load code (LD_*, DYLD_*, GCONV_PATH, GLIBC_TUNABLES and the like) are refused`;

/**
 * The runner user's credentials a read-only or workspace-write command does not see by default (the server's
 * `sandboxHide` replaces the list): `~/` is the runner user's home wherever the command runs. Every client shows
 * the list with the proposal's sandbox.
 */
export const DEFAULT_SANDBOX_HIDE = [
  "~/.ssh",
  "~/.aws",
  "~/.azure",
  "~/.config/gcloud",
  "~/.config/gh",
  "~/.kube",
  "~/.docker/config.json",
  "~/.netrc",
  "~/.git-credentials",
  "~/.gnupg",
  "~/.npmrc",
  "~/.pypirc",
  "~/.cargo/credentials.toml",
  "~/.password-store",
] as const;
