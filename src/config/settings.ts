// config.json and the environment merged into the settings, without zod: reading and checking config.json (zod)
// is src/config/config.ts's, so that a client with no config.json (every `spool` command's usual case) loads no zod.
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { z } from "zod";
import { PRICES, type Price } from "../model/catalog.js";
import { DEFAULT_FAILURE_PATTERNS } from "../model/failures.js";
import { DEFAULT_FULL_ACCEPTORS } from "../protocol/full-acceptors.js";
import { COMMAND_ENV_ENTRY, SANDBOX_SETTINGS, type SandboxSetting } from "./names.js";
import type { ConfigFileSchema, LimitsSchema } from "./schema.js";

/** A plugin spec that names a file (./x, ../x, /x) rather than a package. */
export function isPluginPath(spec: string): boolean {
  return spec.startsWith(".") || spec.startsWith("/") || isAbsolute(spec);
}

export type Limits = z.output<typeof LimitsSchema>;
export type ConfigFile = z.output<typeof ConfigFileSchema>;

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
  /** Who may accept a command in sandbox mode full: "admin", "person" (unscoped, that role or above), "principal:NAME"; [] nobody. */
  sandboxFullAcceptors: string[];
  /** Network allowlists (config.json `egress`): every project's (null: none) and projects' own by name. */
  egress: { allow: string[] | null; projects: Record<string, string[]>; hosts: Record<string, string> };
  /** What sandboxed commands see besides the system, the project, a private /tmp and home and their toolchains: every project's paths, and projects' own by name. */
  sandboxView: SandboxViewSettings;
  /** Runner pools by name (config.json `pools`): the labels their runners carry, and whose runners they may be (null: anyone's). */
  pools: Record<string, { labels: Record<string, string>; principals: string[] | null }>;
  agent: AgentConfig;
}

/** config.json `sandboxView`, with its defaults: nothing added. */
export interface SandboxViewSettings {
  read: string[];
  write: string[];
  projects: Record<string, { read?: string[]; write?: string[] }>;
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
  /** The model's context window in tokens (config.json `models.<alias>.contextTokens`); else the provider's model list, else the table of known ids. */
  contextTokens?: number;
  /** Extended thinking's token budget (Anthropic; config.json `models.<alias>.thinkingTokens`); absent: none asked for. */
  thinkingTokens?: number;
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
  /** Model calls one loop (one prompt's work) may make before it is ended as failed; 0 = no limit. */
  maxStepsPerLoop: number;
  /** Silence of a model server (before the first byte, between chunks) after which the call fails; 0 = no limit. */
  modelTimeoutMs: number;
  /** What the model's write and kill tools may reach: commands of its run that were accepted, or nothing. */
  modelInput: "accepted" | "off";
  /** Prices per model id over the built-in table (config.json `prices`), USD per million tokens. */
  prices: Record<string, Price>;
  /** Default budgets (config.json `budgets`): every run's, a project's, a principal's. */
  budgets: NonNullable<ConfigFile["budgets"]>;
}

/** Where each provider's API is when its <PROVIDER>_BASE_URL is not set (the official SDKs' defaults). */
const DEFAULT_BASE_URLS: Record<string, string> = {
  openai: "https://api.openai.com/v1",
  "openai-responses": "https://api.openai.com/v1",
  anthropic: "https://api.anthropic.com",
};

/** Reads SPOOL_MODEL_<alias> variables; a malformed one is an error at start-up, not at first use. */
export function modelsFromEnv(
  env: NodeJS.ProcessEnv,
  fileMaxTokens: Record<string, number> = {},
  fileModels: NonNullable<ConfigFile["models"]> = {},
): ModelConfig[] {
  const models: ModelConfig[] = [];
  for (const [key, value] of Object.entries(env)) {
    const m = /^SPOOL_MODEL_([A-Za-z0-9_]+)$/.exec(key);
    // SPOOL_MODEL_TIMEOUT_MS and SPOOL_MODEL_<ALIAS>_MAX_TOKENS are settings, not aliases.
    if (!m || !value || key === "SPOOL_MODEL_TIMEOUT_MS" || /_MAX_TOKENS$/i.test(key)) continue;
    const alias = m[1]!.toLowerCase().replace(/_/g, "-");
    const spec = /^([a-z][a-z0-9-]*)\/(.+)$/.exec(value);
    if (!spec) throw new Error(`${key} must look like openai/<model-id>, anthropic/<model-id>, ollama/<model-id> or demo/builtin, got "${value}"`);
    const provider = spec[1]!;
    // The Responses API is OpenAI's: same key and endpoint as openai/.
    const prefix = provider === "openai-responses" ? "OPENAI" : provider.toUpperCase().replace(/-/g, "_");
    if (provider === "ollama") {
      models.push({
        alias,
        provider,
        model: spec[2]!,
        baseUrl: `${(env.OLLAMA_BASE_URL ?? "http://127.0.0.1:11434").replace(/\/+$/, "").replace(/\/v1$/, "")}/v1`,
      });
    } else {
      const baseUrl = env[`${prefix}_BASE_URL`] ?? DEFAULT_BASE_URLS[provider] ?? "";
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
    const own = fileModels[alias];
    if (own?.contextTokens) models.at(-1)!.contextTokens = own.contextTokens;
    if (own?.thinkingTokens) models.at(-1)!.thinkingTokens = own.thinkingTokens;
    if (own?.maxTokens && !maxTokens) models.at(-1)!.maxTokens = own.maxTokens;
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
  sandboxFullAcceptors?: string[];
  egress?: SpoolConfig["egress"];
  sandboxView?: SandboxViewSettings;
  pools?: SpoolConfig["pools"];
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

/** The home (--home, else SPOOL_HOME, else ~/.spool) and its config.json. */
export function configPaths(overrides: Pick<ConfigOverrides, "home">, env: NodeJS.ProcessEnv): { home: string; configPath: string } {
  const home = resolve(overrides.home ?? env.SPOOL_HOME ?? join(homedir(), ".spool"));
  return { home, configPath: join(home, "config.json") };
}

/** A client credential's name: a principal's (src/protocol/role-schemas.ts), so never a path. */
const CLIENT_CREDENTIAL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

/**
 * Where the home keeps the credential `spool mcp add` / `spool acp add` made for a client that starts `spool mcp` or
 * `spool acp` itself (`--credential NAME`): `credentials/NAME` in the home (the directory 0700, the file 0600), so
 * the client's own configuration holds the name alone, and no sandbox sees the token. A name that is not a
 * principal's (a path, `..`) is an error.
 */
export function clientCredentialFile(home: string, name: string): string {
  const wrong = credentialNameError(name);
  if (wrong) throw new Error(wrong);
  return join(home, "credentials", name);
}

/** Why `name` cannot be a client credential's, or null. */
export function credentialNameError(name: string): string | null {
  return CLIENT_CREDENTIAL_NAME.test(name)
    ? null
    : `a credential's name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, not "${name}"`;
}

/**
 * Defaults < config.json (`file`, read and checked by the caller) < environment < explicit overrides (flags).
 * Plugins add up: the file's, then the overrides'; a relative path resolves from config.json's directory for the
 * file's, from the current directory for the overrides' (`spool serve --plugin`). `limitsOf` makes the limits from
 * the file's (src/config/config.ts: zod's defaults); a client that needs none passes a function giving null.
 */
export function settingsFrom<L>(
  paths: { home: string; configPath: string },
  file: ConfigFile,
  overrides: ConfigOverrides,
  env: NodeJS.ProcessEnv,
  limitsOf: (fileLimits: ConfigFile["limits"]) => L,
): Omit<SpoolConfig, "limits"> & { limits: L } {
  const { home, configPath } = paths;
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
    limits: limitsOf(file.limits),
    runnerGraceMs: overrides.runnerGraceMs ?? envNumber(env, "SPOOL_RUNNER_GRACE_MS") ?? file.runnerGraceMs ?? 30_000,
    localRunner: overrides.localRunner ?? envSwitch(env, "SPOOL_LOCAL_RUNNER") ?? file.localRunner ?? true,
    commandTimeoutMs: overrides.commandTimeoutMs ?? envNumber(env, "SPOOL_COMMAND_TIMEOUT_MS") ?? file.commandTimeoutMs ?? 30 * 60 * 1000,
    backgroundTimeoutMs: overrides.backgroundTimeoutMs ?? envNumber(env, "SPOOL_BACKGROUND_TIMEOUT_MS") ?? file.backgroundTimeoutMs ?? 24 * 60 * 60 * 1000,
    decisionTimeoutMs: overrides.decisionTimeoutMs ?? envNumber(env, "SPOOL_DECISION_TIMEOUT_MS") ?? file.decisionTimeoutMs ?? 0,
    livenessTimeoutMs: overrides.livenessTimeoutMs ?? envNumber(env, "SPOOL_LIVENESS_TIMEOUT_MS") ?? file.livenessTimeoutMs ?? 20_000,
    scavengeEveryMb: envNumber(env, "SPOOL_SCAVENGE_EVERY_MB") ?? file.scavengeEveryMb ?? 2,
    commandEnv: overrides.commandEnv ?? envCommandEnv ?? file.commandEnv ?? [],
    sandbox: overrides.sandbox ?? envSandbox(env) ?? file.sandbox ?? "auto",
    sandboxNetwork: overrides.sandboxNetwork ?? envSwitch(env, "SPOOL_SANDBOX_NETWORK") ?? file.sandboxNetwork ?? true,
    sandboxFullAcceptors: overrides.sandboxFullAcceptors ?? file.sandboxFullAcceptors ?? [...DEFAULT_FULL_ACCEPTORS],
    egress: overrides.egress ?? { allow: file.egress?.allow ?? null, projects: file.egress?.projects ?? {}, hosts: file.egress?.hosts ?? {} },
    sandboxView: overrides.sandboxView ?? {
      read: file.sandboxView?.read ?? [],
      write: file.sandboxView?.write ?? [],
      projects: file.sandboxView?.projects ?? {},
    },
    pools:
      overrides.pools ??
      Object.fromEntries(Object.entries(file.pools ?? {}).map(([name, p]) => [name, { labels: p.labels, principals: p.principals ?? null }])),
    agent: {
      models: withDemo(
        modelsFromEnv(env, file.modelMaxTokens, file.models),
        overrides.demoModel ?? envSwitch(env, "SPOOL_DEMO_MODEL") ?? file.demoModel ?? false,
      ),
      toolYieldMs: overrides.agent?.toolYieldMs ?? envNumber(env, "SPOOL_TOOL_YIELD_MS") ?? file.toolYieldMs ?? 10_000,
      toolKillWaitMs: overrides.agent?.toolKillWaitMs ?? envNumber(env, "SPOOL_TOOL_KILL_WAIT_MS") ?? file.toolKillWaitMs ?? 3_000,
      outputBudgetTokens: overrides.agent?.outputBudgetTokens ?? envNumber(env, "SPOOL_OUTPUT_TOKENS") ?? file.outputTokens ?? 4_000,
      failurePatterns: overrides.agent?.failurePatterns ?? file.failurePatterns ?? [...DEFAULT_FAILURE_PATTERNS],
      maxStepsPerLoop: overrides.agent?.maxStepsPerLoop ?? envNumber(env, "SPOOL_MAX_STEPS") ?? file.maxSteps ?? 50,
      modelTimeoutMs: overrides.agent?.modelTimeoutMs ?? envNumber(env, "SPOOL_MODEL_TIMEOUT_MS") ?? file.modelTimeoutMs ?? 120_000,
      modelInput: overrides.agent?.modelInput ?? file.modelInput ?? "accepted",
      prices: { ...PRICES, ...file.prices, ...overrides.agent?.prices },
      budgets: overrides.agent?.budgets ?? file.budgets ?? {},
    },
  };
}
