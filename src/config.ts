import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { checkFailurePatterns, DEFAULT_FAILURE_PATTERNS } from "./model/failures.js";
import { EgressConfig } from "./protocol/egress-schema.js";
import { nearest } from "./protocol/nearest.js";
import { DEFAULT_SANDBOX_HIDE } from "./protocol/sandbox.js";

/** An entry of `commandEnv`: a variable name, or a pattern with `*`. */
const COMMAND_ENV_ENTRY = /^[A-Za-z_*][A-Za-z0-9_*]*$/;

export const LimitsSchema = z.strictObject({
  /** Largest WebSocket message accepted, in bytes; a larger frame closes the connection with 1009. */
  maxMessageBytes: z
    .number()
    .int()
    .positive()
    .default(4 * 1024 * 1024),
  /** Largest decoded `stream` chunk, in bytes (PAYLOAD_TOO_LARGE above). */
  maxChunkBytes: z
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /** Largest body `entry/get` returns in one call; use tail or line slices beyond it. */
  maxReadBytes: z
    .number()
    .int()
    .positive()
    .default(8 * 1024 * 1024),
  /** Milliseconds one `entry/search` may run (in a worker thread); past it the search ends and answers what it found, and where to go on. */
  searchBudgetMs: z.number().int().positive().default(5_000),
  /** Concurrent WebSocket connections; more are refused with HTTP 503. */
  maxConnections: z.number().int().positive().default(512),
  /**
   * Of them, one principal's (its credentials' and paired devices' together; the home's credential is held to the
   * server-wide bound only): more are refused with HTTP 429, so one principal cannot fill the server's connections.
   */
  maxConnectionsPerPrincipal: z.number().int().positive().default(64),
  /** Connections that have not authenticated yet, all together; past it a new one closes the oldest waiting (SPEC §2c "Bounded before authentication"). */
  maxUnauthenticatedConnections: z.number().int().positive().default(64),
  /** Of them, from one address (every Unix socket connection counts as one address). */
  maxUnauthenticatedPerAddress: z.number().int().positive().default(32),
  /** Milliseconds a connection may stay unauthenticated (the web page's plain HTTP requests included) before it is closed. */
  authDeadlineMs: z.number().int().positive().default(10_000),
  /** Milliseconds a new connection has for its handshake before it counts against the two caps above as waiting idle. */
  authGraceMs: z.number().int().nonnegative().default(2_000),
  /** Live stream subscriptions per connection (LIMIT_EXCEEDED above). */
  maxSubscriptionsPerConnection: z.number().int().positive().default(64),
  /** Bytes a watcher's connection may have unsent before the watcher is dropped as lagging (`stream/lagged`); at most half of maxOutboundBytes counts. */
  maxWatcherBufferBytes: z
    .number()
    .int()
    .positive()
    .default(8 * 1024 * 1024),
  /** `stream` (and other ordered) calls one connection may have unanswered; more are LIMIT_EXCEEDED. Runners keep 8 by default. */
  maxUnackedChunks: z.number().int().positive().default(256),
  /** Requests one batch may hold; a longer batch gets one INVALID_REQUEST (-32600) and none of it runs. */
  maxBatchSize: z.number().int().positive().default(100),
  /** Requests one connection may have received and not yet answered (queued or running); at it the server stops reading that connection until half are answered. */
  maxRequestsInFlight: z.number().int().positive().default(1024),
  /** Bytes sent to one connection that its peer may leave unread; a message past it closes the connection with 1008 instead of being buffered. */
  maxOutboundBytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  /** Bytes held for all clients together (unflushed output, unanswered requests, chunks queued for watchers); past it the connection holding the most is closed with 1013. */
  maxClientMemoryBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  /**
   * Bytes of reads in flight for all clients together: data read from the store (entry/get bodies, replay pages) and not
   * yet written to the client's socket. A read that would pass it waits its turn; at least maxReadBytes and maxChunkBytes.
   */
  maxReadBytesInFlight: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  /** Sign-in codes (`spool open`) one principal may have waiting; minting another spends that principal's oldest. */
  maxCodesPerPrincipal: z.number().int().positive().default(8),
  /** Sign-in codes waiting, all principals together; past it a new one is refused (LIMIT_EXCEEDED), nobody's is dropped. */
  maxCodes: z.number().int().positive().default(256),
  /** Paired devices one principal may have; pairing another unpairs that principal's device used longest ago. */
  maxDevicesPerPrincipal: z.number().int().positive().default(16),
  /** Paired devices, all principals together; past it a new pairing is refused (LIMIT_EXCEEDED), nobody's is unpaired. */
  maxDevices: z.number().int().positive().default(1024),
  /** How long a paired device stays signed in after its last use, in milliseconds (never past its credential's expiry). */
  deviceIdleMs: z
    .number()
    .int()
    .positive()
    .default(30 * 24 * 60 * 60 * 1000),
  /** Let `proposal/create` use a cwd outside the project root (off: such a cwd is INVALID_PARAMS). */
  allowCwdOutsideRoot: z.boolean().default(false),
  /** Largest decoded `stream/input` message, in bytes (PAYLOAD_TOO_LARGE above). */
  maxInputBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024),
  /** Input bytes one producer may have on their way to its owner at once; more is LIMIT_EXCEEDED until the owner has taken them. */
  maxQueuedInputBytes: z
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  maxPendingPerPrincipal: z
    .number()
    .int()
    .positive()
    .default(256)
    .describe("Proposals one principal may have waiting for a decision, in every run and project together; the next is LIMIT_EXCEEDED"),
  maxPendingPerRun: z
    .number()
    .int()
    .positive()
    .default(64)
    .describe("Proposals one run may have waiting, whoever made them; the next one a principal makes there is LIMIT_EXCEEDED"),
  proposalsPerMinute: z
    .number()
    .int()
    .positive()
    .default(600)
    .describe("Proposals one principal may make in a minute (a bucket refilled continuously); past it LIMIT_EXCEEDED with retryAfterMs"),
});

/**
 * The limits that bound what one principal may grow, each listed with its default in SPEC (Limits, "Per principal",
 * generated from this list). The home's credential (the operator's) is held to none of the proposal bounds, nor
 * to the connections'.
 */
export const PER_PRINCIPAL_LIMITS = [
  "maxPendingPerPrincipal",
  "maxPendingPerRun",
  "proposalsPerMinute",
  "maxCodesPerPrincipal",
  "maxDevicesPerPrincipal",
  "maxConnectionsPerPrincipal",
] as const satisfies readonly (keyof z.output<typeof LimitsSchema>)[];

/** config.json `sandbox`: the sandbox mode of sh commands (SPEC §7 Runners, "Sandbox modes"). */
export const SANDBOX_SETTINGS = ["auto", "workspace-write", "full"] as const;
export type SandboxSetting = (typeof SANDBOX_SETTINGS)[number];

export const ConfigFileSchema = z.strictObject({
  host: z.string().optional(),
  port: z.number().int().min(0).max(65535).optional(),
  /** A PostgreSQL URL (postgres://user@host:port/db): the store is that database instead of the home's SQLite file. */
  database: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "a PostgreSQL URL starts with postgres://")
    .optional(),
  /** Browser origins allowed to connect (exact match, e.g. "http://localhost:5173"). */
  allowedOrigins: z.array(z.string()).optional(),
  /** External plugins: paths (starting with ./, ../ or /; relative ones from this file's directory) or package names. */
  plugins: z.array(z.string().min(1)).optional(),
  /** Regular expressions (case-insensitive) for the failure-looking lines the model view keeps from the left-out middle of a long output; replaces the default list, [] turns the search off. */
  failurePatterns: z
    .array(
      z.string().superRefine((pattern, ctx) => {
        const problem = checkFailurePatterns([pattern]);
        if (problem) ctx.addIssue({ code: "custom", message: problem.replace(/^invalid failure pattern .*?: /, "") });
      }),
    )
    .optional(),
  limits: LimitsSchema.partial().optional(),
  /** How long a model server may stay silent (before its first byte, and between chunks) before the call fails, in milliseconds; 0 = no limit. */
  modelTimeoutMs: z.number().int().nonnegative().optional(),
  /** `max_tokens` per model alias, e.g. {"fast": 4096}; SPOOL_MODEL_<ALIAS>_MAX_TOKENS wins. */
  modelMaxTokens: z.record(z.string(), z.number().int().positive()).optional(),
  runnerGraceMs: z.number().int().nonnegative().optional(),
  /** Run accepted commands on the embedded local runner when no attached runner takes them. */
  localRunner: z.boolean().optional(),
  /** Kill an accepted command after this many milliseconds; 0 = no limit. */
  commandTimeoutMs: z.number().int().nonnegative().optional(),
  /** Default time limit of a command started in the background (the model's `sh` with `background`), in milliseconds; 0 = none. */
  backgroundTimeoutMs: z.number().int().nonnegative().optional(),
  /** Reject a proposal nobody decided within this many milliseconds (recorded as decided by the deadline, announced as `expired`); 0 = never. */
  decisionTimeoutMs: z.number().int().nonnegative().optional(),
  /** What the model may do to running commands with its `write` and `kill` tools: "accepted" (commands of its run a person or rule accepted, the default) or "off" (nothing). */
  modelInput: z.enum(["accepted", "off"]).optional(),
  /** Close a WebSocket connection that has sent nothing (not even a pong to the server's pings) for this many milliseconds; 0 = never. */
  livenessTimeoutMs: z.number().int().nonnegative().optional(),
  /** MB of binary frames received between two young-generation collections, which free the chunks' buffers (src/scavenger.ts); 0 = V8 alone decides. */
  scavengeEveryMb: z.number().int().nonnegative().optional(),
  /** Variables of the runner's environment that commands get besides the base (PATH, HOME, LANG, TERM): names, or patterns with `*` (which never match SPOOL_* or secret-looking names). */
  commandEnv: z.array(z.string().regex(COMMAND_ENV_ENTRY, "a variable name, or a pattern with *")).optional(),
  /**
   * The sandbox mode of `sh` commands (SPEC §7 Runners, "Sandbox modes"): "auto" (the default: workspace-write where the runner a
   * plain accept picks has it, else full, saying why), "workspace-write" (always; a runner without it is refused) or "full" (none).
   */
  sandbox: z.enum(SANDBOX_SETTINGS).optional(),
  /** Whether workspace-write commands keep the network (default true); false cuts it. */
  sandboxNetwork: z.boolean().optional(),
  /** Network mode `allowlist` (SPEC §7 Runners, "Sandbox modes"): the projects' lists of hosts, and the proxy's own hosts file. */
  egress: EgressConfig.optional(),
  /** Credential paths a read-only or workspace-write command does not see (`~/` = the runner user's home); replaces DEFAULT_SANDBOX_HIDE. */
  sandboxHide: z
    .array(z.string().regex(/^(~\/|\/)./, "an absolute path or one starting with ~/"))
    .max(48)
    .optional(),
  /** How long a turn waits for an accepted command before the model sees its output so far, in milliseconds. */
  toolYieldMs: z.number().int().nonnegative().optional(),
  /** How long the model's `kill` waits for the command to end after its signal, in milliseconds. */
  toolKillWaitMs: z.number().int().nonnegative().optional(),
  /** Tokens of command output the model sees per tool result before head/tail cutting. */
  outputTokens: z.number().int().positive().optional(),
  /** Offer the built-in demo model as the alias "demo" (no network, no key; src/model/demo.ts). */
  demoModel: z.boolean().optional(),
});

const MILLISECONDS = "a whole number of milliseconds, 0 or more";

/** What each config.json setting must hold, in words, for error messages; `key[]` is an item of a list, `key.*` a value of an object. */
const MUST: Record<string, string> = {
  host: "an address or host name (a string)",
  port: "an integer 0-65535",
  allowedOrigins: "a list of origins",
  "allowedOrigins[]": 'an origin (a string such as "http://localhost:5173")',
  plugins: "a list of plugin paths or package names",
  "plugins[]": "a plugin path (./x.ts, /abs/x.js) or package name",
  failurePatterns: "a list of regular expressions",
  "failurePatterns[]": "a regular expression",
  limits: "an object of limits",
  modelTimeoutMs: MILLISECONDS,
  modelMaxTokens: "an object of model alias → max_tokens",
  "modelMaxTokens.*": "a positive integer",
  runnerGraceMs: MILLISECONDS,
  localRunner: "true or false",
  commandTimeoutMs: MILLISECONDS,
  backgroundTimeoutMs: MILLISECONDS,
  decisionTimeoutMs: MILLISECONDS,
  modelInput: '"accepted" or "off"',
  livenessTimeoutMs: MILLISECONDS,
  scavengeEveryMb: "a whole number of MB, 0 or more",
  commandEnv: "a list of variable names or patterns with *",
  "commandEnv[]": "a variable name or a pattern with *",
  toolYieldMs: MILLISECONDS,
  toolKillWaitMs: MILLISECONDS,
  outputTokens: "a positive integer",
  sandbox: '"auto", "workspace-write" or "full"',
  sandboxNetwork: "true or false",
  egress: 'an object {"allow": [hosts], "projects": {"name": [hosts]}, "hosts": {"name": "address"}}',
  "egress.allow": 'a list of hosts ("registry.npmjs.org", "*.github.com", "example.org:8443", "10.0.0.5")',
  "sandboxHide[]": "an absolute path or one starting with ~/",
  demoModel: "true or false",
  ...Object.fromEntries(
    Object.entries(LimitsSchema.parse({})).map(([key, value]) => [`limits.${key}`, typeof value === "boolean" ? "true or false" : "a positive integer"]),
  ),
};

/** `limits.maxBatchSize`, `plugins[2]`. */
function settingName(path: readonly PropertyKey[]): string {
  return path.map((part, i) => (typeof part === "number" ? `[${part}]` : `${i > 0 ? "." : ""}${String(part)}`)).join("");
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((at, part) => (at !== null && typeof at === "object" ? (at as Record<PropertyKey, unknown>)[part] : undefined), value);
}

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** One line per problem, each naming the file and the setting: `/x/config.json: "port" must be an integer 0-65535, got "abc"`. */
function configProblems(file: string, raw: unknown, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      const where = settingName(issue.path);
      const known = where === "limits" ? Object.keys(LimitsSchema.shape) : Object.keys(ConfigFileSchema.shape);
      const names = issue.keys.map((k) => `"${where ? `${where}.` : ""}${k}"`).join(", ");
      const near = issue.keys.length === 1 ? nearest(issue.keys[0]!, known) : null;
      const hint = near ? ` — did you mean "${where ? `${where}.` : ""}${near}"?` : "";
      return `${file}: ${names} ${issue.keys.length > 1 ? "are not settings" : "is not a setting"}${hint} (known${where ? ` in ${where}` : ""}: ${known.join(", ")})`;
    }
    const name = settingName(issue.path);
    const pattern = settingName(
      issue.path.map((part, i) => (typeof part === "number" ? 0 : i === 1 && issue.path[0] === "modelMaxTokens" ? "*" : part)),
    ).replace(/\[0\]/g, "[]");
    const must = MUST[pattern];
    const detail = issue.code === "custom" && issue.message ? ` (${issue.message})` : "";
    return `${file}: "${name}" must be ${must ?? issue.message}${detail}, got ${shown(valueAt(raw, issue.path))}`;
  });
}

/** Reads config.json: absent is {}, anything wrong is an error naming the file and the setting. */
function readConfigFile(file: string): z.output<typeof ConfigFileSchema> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new Error(`${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const at = /at position (\d+)/.exec(message);
    const before = at ? text.slice(0, Number(at[1])).split("\n") : null;
    const where = before ? ` (line ${before.length}, column ${before.at(-1)!.length + 1})` : "";
    throw new Error(`${file}: not valid JSON: ${message}${where}`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(`${file}: must hold a JSON object of settings, e.g. {"port": 7420}, got ${shown(raw)}`);
  }
  const parsed = ConfigFileSchema.safeParse(raw);
  if (!parsed.success) throw new Error(configProblems(file, raw, parsed.error.issues).join("\n"));
  return parsed.data;
}

/** A plugin spec that names a file (./x, ../x, /x) rather than a package. */
export function isPluginPath(spec: string): boolean {
  return spec.startsWith(".") || spec.startsWith("/") || isAbsolute(spec);
}

export type Limits = z.output<typeof LimitsSchema>;

export interface SpoolConfig {
  home: string;
  host: string;
  port: number;
  dbFile: string;
  /** The Unix socket local clients reach the server on (SPEC §2c): spool.sock in the home. */
  socketPath: string;
  /** A PostgreSQL URL: when set, the store is that database and dbFile is not used. */
  databaseUrl: string | null;
  tokenFile: string;
  allowedOrigins: string[];
  /** External plugins: absolute paths (relative ones resolved by loadConfig) or package names. */
  plugins: string[];
  limits: Limits;
  /** How long a producer whose channels are open may stay silent after a restart or runner loss. */
  runnerGraceMs: number;
  /** Root of a project created by `initialize` without one: the server's working directory. */
  defaultRoot: string;
  /** Whether `spool serve` embeds the local runner named "local". */
  localRunner: boolean;
  /** Default time limit of an accepted command; 0 = none. */
  commandTimeoutMs: number;
  /** Default time limit of a command started in the background; 0 = none. */
  backgroundTimeoutMs: number;
  /** How long a proposal may wait for a decision before the deadline rejects it; 0 = for ever (the default). */
  decisionTimeoutMs: number;
  /** Silence after which a WebSocket connection is taken for dead and closed (the server pings meanwhile); 0 = never. */
  livenessTimeoutMs: number;
  /** MB of binary frames received between two young-generation collections the server asks for; 0 = none. */
  scavengeEveryMb: number;
  /** Names (or `*` patterns) of the runner's environment variables passed to commands besides the base; see SPEC §7 Environment. */
  commandEnv: string[];
  /** The sandbox mode of sh commands: auto (workspace-write where the default runner has it, else full), workspace-write, or full. */
  sandbox: SandboxSetting;
  /** Whether workspace-write commands keep the network. */
  sandboxNetwork: boolean;
  /** Network allowlists (config.json `egress`): every project's (null: none) and projects' own by name. */
  egress: { allow: string[] | null; projects: Record<string, string[]>; hosts: Record<string, string> };
  /** Credential paths sandboxed commands do not see (`~/`: the runner user's home). */
  sandboxHide: string[];
  agent: AgentConfig;
}

export interface ModelConfig {
  alias: string;
  /** openai, ollama, or a prefix a provider plugin registers. */
  provider: string;
  model: string;
  baseUrl: string;
  apiKey?: string;
  /** `max_tokens` sent with every request (SPOOL_MODEL_<ALIAS>_MAX_TOKENS or config.json modelMaxTokens); the server's default when absent. */
  maxTokens?: number;
}

export interface AgentConfig {
  /** Model aliases from SPOOL_MODEL_<alias>=openai/<model-id> or ollama/<model-id>. */
  models: ModelConfig[];
  /** How long a turn waits for an accepted command before the model sees its output so far. */
  toolYieldMs: number;
  /** How long the model's `kill` waits for the command to end after its signal. */
  toolKillWaitMs: number;
  /** Tokens of command output the model sees per tool result before head/tail cutting. */
  outputBudgetTokens: number;
  /** Patterns of failure-looking lines kept from the left-out middle of a long output (config.json failurePatterns; default DEFAULT_FAILURE_PATTERNS). */
  failurePatterns: string[];
  /** Model calls one loop may make before it is ended as failed. */
  maxStepsPerLoop: number;
  /** Silence of a model server (before the first byte, between chunks) after which the call fails; 0 = no limit. */
  modelTimeoutMs: number;
  /** What the model's write and kill tools may reach: commands of its run that were accepted, or nothing. */
  modelInput: "accepted" | "off";
}

/** Reads SPOOL_MODEL_<alias> variables; a malformed one is an error at start-up, not at first use. */
export function modelsFromEnv(env: NodeJS.ProcessEnv, fileMaxTokens: Record<string, number> = {}): ModelConfig[] {
  const models: ModelConfig[] = [];
  for (const [key, value] of Object.entries(env)) {
    const m = /^SPOOL_MODEL_([A-Za-z0-9_]+)$/.exec(key);
    // SPOOL_MODEL_TIMEOUT_MS and SPOOL_MODEL_<ALIAS>_MAX_TOKENS are settings, not aliases.
    if (!m || !value || key === "SPOOL_MODEL_TIMEOUT_MS" || /_MAX_TOKENS$/i.test(key)) continue;
    const alias = m[1]!.toLowerCase().replace(/_/g, "-");
    const spec = /^([a-z][a-z0-9-]*)\/(.+)$/.exec(value);
    if (!spec) throw new Error(`${key} must look like openai/<model-id>, ollama/<model-id> or demo/builtin, got "${value}"`);
    const provider = spec[1]!;
    const prefix = provider.toUpperCase().replace(/-/g, "_");
    if (provider === "ollama") {
      models.push({
        alias,
        provider,
        model: spec[2]!,
        baseUrl: `${(env.OLLAMA_BASE_URL ?? "http://127.0.0.1:11434").replace(/\/+$/, "").replace(/\/v1$/, "")}/v1`,
      });
    } else {
      const baseUrl = env[`${prefix}_BASE_URL`] ?? (provider === "openai" ? "https://api.openai.com/v1" : "");
      const apiKey = env[`${prefix}_API_KEY`];
      models.push({ alias, provider, model: spec[2]!, baseUrl, ...(apiKey ? { apiKey } : {}) });
    }
    const rawMax = env[`${key}_MAX_TOKENS`];
    let maxTokens = fileMaxTokens[alias];
    if (rawMax !== undefined && rawMax !== "") {
      maxTokens = Number(rawMax);
      if (!Number.isInteger(maxTokens) || maxTokens <= 0) throw new Error(`${key}_MAX_TOKENS must be a positive integer, got "${rawMax}"`);
    }
    if (maxTokens) models.at(-1)!.maxTokens = maxTokens;
  }
  return models.sort((a, b) => a.alias.localeCompare(b.alias));
}

/** The built-in demo model as the alias "demo", unless SPOOL_MODEL_DEMO defines that alias itself. */
function withDemo(models: ModelConfig[], on: boolean): ModelConfig[] {
  if (!on || models.some((m) => m.alias === "demo")) return models;
  return [...models, { alias: "demo", provider: "demo", model: "builtin", baseUrl: "" }].sort((a, b) => a.alias.localeCompare(b.alias));
}

export interface ConfigOverrides {
  home?: string;
  /** A PostgreSQL URL (--database). */
  database?: string;
  host?: string;
  port?: number;
  allowedOrigins?: string[];
  plugins?: string[];
  limits?: Partial<Limits>;
  runnerGraceMs?: number;
  localRunner?: boolean;
  commandTimeoutMs?: number;
  backgroundTimeoutMs?: number;
  decisionTimeoutMs?: number;
  livenessTimeoutMs?: number;
  commandEnv?: string[];
  sandbox?: SandboxSetting;
  sandboxNetwork?: boolean;
  egress?: SpoolConfig["egress"];
  sandboxHide?: string[];
  /** `spool serve --demo-model`: the built-in demo model as the alias "demo". */
  demoModel?: boolean;
  agent?: Partial<Omit<AgentConfig, "models">>;
}

function envNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

function envSwitch(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = env[name]?.toLowerCase();
  if (raw === undefined || raw === "") return undefined;
  if (["on", "1", "true", "yes"].includes(raw)) return true;
  if (["off", "0", "false", "no"].includes(raw)) return false;
  throw new Error(`${name} must be on or off, got "${env[name]}"`);
}

function envSandbox(env: NodeJS.ProcessEnv): SandboxSetting | undefined {
  const raw = env.SPOOL_SANDBOX;
  if (raw === undefined || raw === "") return undefined;
  if (!(SANDBOX_SETTINGS as readonly string[]).includes(raw)) throw new Error(`SPOOL_SANDBOX must be auto, workspace-write or full, got "${raw}"`);
  return raw as SandboxSetting;
}

/** Limits that must agree with each other: a read the server allows must fit the cap on reads in flight. */
function checkedLimits(file: string, limits: Limits): Limits {
  for (const other of ["maxReadBytes", "maxChunkBytes"] as const) {
    if (limits.maxReadBytesInFlight < limits[other]) {
      throw new Error(
        `${file}: "limits.maxReadBytesInFlight" must be at least limits.${other} (${limits[other]}): a read of that size could never go, got ${limits.maxReadBytesInFlight}`,
      );
    }
  }
  return limits;
}

/**
 * Defaults < $SPOOL_HOME/config.json < environment < explicit overrides (flags). Plugins add up: the
 * file's, then the overrides'; a relative path resolves from config.json's directory for the file's,
 * from the current directory for the overrides' (`spool serve --plugin`).
 */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): SpoolConfig {
  const home = resolve(overrides.home ?? env.SPOOL_HOME ?? join(homedir(), ".spool"));
  const configPath = join(home, "config.json");
  const file = readConfigFile(configPath);
  const pluginsFrom = (specs: readonly string[], base: string) => specs.map((spec) => (isPluginPath(spec) ? resolve(base, spec) : spec));
  const envPort = envNumber(env, "SPOOL_PORT");
  if (envPort !== undefined && envPort > 65535) throw new Error(`SPOOL_PORT must be 0-65535, got "${env.SPOOL_PORT}"`);
  const port = overrides.port ?? envPort ?? file.port ?? 7420;
  const envOrigins = env.SPOOL_ALLOWED_ORIGINS
    ? env.SPOOL_ALLOWED_ORIGINS.split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : undefined;
  const envCommandEnv = env.SPOOL_COMMAND_ENV
    ? env.SPOOL_COMMAND_ENV.split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : undefined;
  for (const entry of envCommandEnv ?? []) {
    if (!COMMAND_ENV_ENTRY.test(entry)) throw new Error(`SPOOL_COMMAND_ENV must list variable names or patterns with *, got "${entry}"`);
  }
  return {
    home,
    host: overrides.host ?? env.SPOOL_HOST ?? file.host ?? "127.0.0.1",
    port,
    dbFile: join(home, "spool.db"),
    socketPath: join(home, "spool.sock"),
    databaseUrl: overrides.database || env.SPOOL_DATABASE_URL || file.database || null,
    // Servers sharing one database accept one token: each may name the same file.
    tokenFile: env.SPOOL_TOKEN_FILE ? resolve(env.SPOOL_TOKEN_FILE) : join(home, "token"),
    allowedOrigins: overrides.allowedOrigins ?? envOrigins ?? file.allowedOrigins ?? [],
    plugins: [...pluginsFrom(file.plugins ?? [], dirname(configPath)), ...pluginsFrom(overrides.plugins ?? [], process.cwd())],
    limits: checkedLimits(configPath, LimitsSchema.parse({ ...file.limits, ...overrides.limits })),
    runnerGraceMs: overrides.runnerGraceMs ?? envNumber(env, "SPOOL_RUNNER_GRACE_MS") ?? file.runnerGraceMs ?? 30_000,
    defaultRoot: process.cwd(),
    localRunner: overrides.localRunner ?? envSwitch(env, "SPOOL_LOCAL_RUNNER") ?? file.localRunner ?? true,
    commandTimeoutMs: overrides.commandTimeoutMs ?? envNumber(env, "SPOOL_COMMAND_TIMEOUT_MS") ?? file.commandTimeoutMs ?? 30 * 60 * 1000,
    backgroundTimeoutMs: overrides.backgroundTimeoutMs ?? envNumber(env, "SPOOL_BACKGROUND_TIMEOUT_MS") ?? file.backgroundTimeoutMs ?? 24 * 60 * 60 * 1000,
    decisionTimeoutMs: overrides.decisionTimeoutMs ?? envNumber(env, "SPOOL_DECISION_TIMEOUT_MS") ?? file.decisionTimeoutMs ?? 0,
    livenessTimeoutMs: overrides.livenessTimeoutMs ?? envNumber(env, "SPOOL_LIVENESS_TIMEOUT_MS") ?? file.livenessTimeoutMs ?? 20_000,
    scavengeEveryMb: envNumber(env, "SPOOL_SCAVENGE_EVERY_MB") ?? file.scavengeEveryMb ?? 2,
    commandEnv: overrides.commandEnv ?? envCommandEnv ?? file.commandEnv ?? [],
    sandbox: overrides.sandbox ?? envSandbox(env) ?? file.sandbox ?? "auto",
    sandboxNetwork: overrides.sandboxNetwork ?? envSwitch(env, "SPOOL_SANDBOX_NETWORK") ?? file.sandboxNetwork ?? true,
    egress: overrides.egress ?? { allow: file.egress?.allow ?? null, projects: file.egress?.projects ?? {}, hosts: file.egress?.hosts ?? {} },
    sandboxHide: overrides.sandboxHide ?? file.sandboxHide ?? [...DEFAULT_SANDBOX_HIDE],
    agent: {
      models: withDemo(modelsFromEnv(env, file.modelMaxTokens), overrides.demoModel ?? envSwitch(env, "SPOOL_DEMO_MODEL") ?? file.demoModel ?? false),
      toolYieldMs: overrides.agent?.toolYieldMs ?? envNumber(env, "SPOOL_TOOL_YIELD_MS") ?? file.toolYieldMs ?? 10_000,
      toolKillWaitMs: overrides.agent?.toolKillWaitMs ?? envNumber(env, "SPOOL_TOOL_KILL_WAIT_MS") ?? file.toolKillWaitMs ?? 3_000,
      outputBudgetTokens: overrides.agent?.outputBudgetTokens ?? envNumber(env, "SPOOL_OUTPUT_TOKENS") ?? file.outputTokens ?? 4_000,
      failurePatterns: overrides.agent?.failurePatterns ?? file.failurePatterns ?? [...DEFAULT_FAILURE_PATTERNS],
      maxStepsPerLoop: overrides.agent?.maxStepsPerLoop ?? 50,
      modelTimeoutMs: overrides.agent?.modelTimeoutMs ?? envNumber(env, "SPOOL_MODEL_TIMEOUT_MS") ?? file.modelTimeoutMs ?? 120_000,
      modelInput: overrides.agent?.modelInput ?? file.modelInput ?? "accepted",
    },
  };
}
