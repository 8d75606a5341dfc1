/**
 * Where an accepted command runs (SPEC §7 Runners, "Sandbox modes"). Every
 * client shows a proposal's mode before the decision.
 *
 * - `read-only`: nothing writable; it sees the system, the project, a private
 *   /tmp and home, its PATH's toolchains and the configured paths (its view,
 *   a fact); its own PID namespace, no network (the `env` tool, `ask` runs);
 * - `workspace-write`: the same view with the project root (and the
 *   configured write paths) writable, a private /tmp and home, its own PID
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
 * Why `path` cannot be a path the configuration adds to a sandbox's view (`sandboxView.read`, `sandboxView.write`):
 * it must be absolute or start with `~/` (the runner's home), name something below `/` or `~` (never all of either),
 * and hold no `.` or `..` part; null when it is fine.
 */
export function viewPathProblem(path: string): string | null {
  const rest = path.startsWith("~/") ? path.slice(2) : path.startsWith("/") ? path.slice(1) : null;
  if (rest === null) return "it is relative";
  if (path.includes("\0")) return "it holds a NUL byte";
  const parts = rest.split("/").filter(Boolean);
  if (parts.length === 0) return "it names all of / or ~, not a path below them";
  if (parts.some((part) => part === "." || part === "..")) return "it has a . or .. part";
  return null;
}

/** What replaced `sandboxHide`, for the error an old config.json gets. */
export const SANDBOX_HIDE_REMOVED =
  'sandboxHide was removed: a sandboxed command no longer sees the whole machine minus the paths it hides; it sees only the system directories, its project, a private /tmp and home, the toolchains its PATH names and the paths you add with "sandboxView": {"read": [...], "write": [...]} (docs/runners.md, "What a command sees") — remove sandboxHide from config.json';
