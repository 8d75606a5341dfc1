import { z } from "zod";
import { checkFailurePatterns } from "../model/failures.js";
import { EgressConfig } from "../protocol/egress-schema.js";
import { FULL_ACCEPTOR_ENTRY } from "../protocol/full-acceptors.js";
import { LabelSelector, PoolName } from "../protocol/pools.js";
import { viewPathProblem } from "../protocol/sandbox.js";
import { Budget } from "../protocol/views-schemas.js";
import { COMMAND_ENV_ENTRY, SANDBOX_SETTINGS } from "./names.js";

/** A runner pool the configuration names (SPEC §7 "Pools"): the labels its runners carry, and whose runners they may be. */
export const PoolConfig = z.strictObject({
  labels: LabelSelector,
  principals: z.array(z.string().min(1).max(200)).min(1).max(64).optional(),
});

export { COMMAND_ENV_ENTRY, SANDBOX_SETTINGS, type SandboxSetting } from "./names.js";

/** A path a sandbox's view gets from the configuration: absolute, or `~/x` in the runner's home. */
const ViewPath = z.string().superRefine((path, ctx) => {
  const problem = viewPathProblem(path);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
const ViewPaths = z.strictObject({ read: z.array(ViewPath).max(32).optional(), write: z.array(ViewPath).max(32).optional() });

/** config.json `sandboxView`: every project's read and write paths, and `projects`: a project's own by its name (it replaces both). */
export const SandboxViewConfig = ViewPaths.extend({ projects: z.record(z.string(), ViewPaths).optional() });

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
  maxSearchesPerPrincipal: z
    .number()
    .int()
    .positive()
    .default(8)
    .describe(
      "Searches one principal (with the credentials minted under it) may have running or waiting; the next is LIMIT_EXCEEDED. While another principal waits, one principal runs at most one search less than the pool's workers",
    ),
  /** Concurrent WebSocket connections; more are refused with HTTP 503 (the home's go homeReserve past it). */
  maxConnections: z.number().int().positive().default(512),
  /**
   * Of them, one principal's (its credentials', the credentials it minted and their paired devices' together; the
   * home's credential is held to the server-wide bound only): more are refused with HTTP 429, so one principal cannot
   * fill the server's connections.
   */
  maxConnectionsPerPrincipal: z.number().int().positive().default(64),
  homeReserve: z
    .number()
    .int()
    .nonnegative()
    .default(32)
    .describe(
      "Room kept for the home (its token file's credential, and what comes by its Unix socket) above every server-wide bound: connections, sockets, paired devices, sign-in codes, /mcp and /acp's requests and tables, searches waiting. Whoever fills a bound, the home still connects, pairs and revokes",
    ),
  maxCredentialsPerPrincipal: z
    .number()
    .int()
    .positive()
    .default(256)
    .describe("Live credentials one principal and those minted under it may hold together; token/create past it is LIMIT_EXCEEDED"),
  maxSockets: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe(
      "Sockets open at once (TCP and the Unix socket), below the process's descriptor limit (RLIMIT_NOFILE) with room for the store and commands; TCP stops homeReserve short of it, the Unix socket does not. 0: the limit less a quarter of it (at least 256)",
    ),
  maxHttpRequests: z
    .number()
    .int()
    .positive()
    .default(512)
    .describe("Requests under way at /mcp and /acp together (open SSE streams included); past it HTTP 429 (the home's go homeReserve past it)"),
  maxHttpRequestsPerPrincipal: z
    .number()
    .int()
    .positive()
    .default(64)
    .describe(
      "Requests one principal (with the credentials minted under it) may have under way at /mcp and /acp together; past it HTTP 429, answered before any of the body is read",
    ),
  bodyDeadlineMs: z
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe(
      "Milliseconds a request's body (at /mcp, /acp and the web page's sign-in routes) may take to arrive after its headers; past it HTTP 408 and its connection is cut",
    ),
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
  maxOpenLoopsPerRun: z
    .number()
    .int()
    .positive()
    .default(16)
    .describe("Loops one run may have queued or running (its prompts not yet answered); the next run/prompt is LIMIT_EXCEEDED until one ends"),
  maxPendingPerPrincipal: z
    .number()
    .int()
    .positive()
    .default(256)
    .describe(
      "Proposals one principal may have waiting for a decision (with the credentials minted under it), in every run and project together; the next is LIMIT_EXCEEDED",
    ),
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
    .describe(
      "Proposals one principal may make in a minute (a bucket refilled continuously; one refused for what it says takes none); past it LIMIT_EXCEEDED with retryAfterMs",
    ),
  runsPerMinute: z
    .number()
    .int()
    .positive()
    .default(120)
    .describe("Runs one principal may create in a minute (a bucket refilled continuously); past it run/create is LIMIT_EXCEEDED with retryAfterMs"),
  promptBytesPerHour: z
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024)
    .describe(
      "Bytes of prompts one principal may queue in an hour, run/create's first prompt and run/prompt alike (a bucket refilled continuously); past it LIMIT_EXCEEDED with retryAfterMs",
    ),
  rejectedBytesPerHour: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024)
    .describe(
      "Bytes of proposals one principal (with the credentials it minted) may leave stored rejected or withdrawn in an hour (a bucket refilled continuously); past it a new proposal is LIMIT_EXCEEDED with retryAfterMs",
    ),
});

/**
 * The limits that bound what one principal may grow, each listed with its default in SPEC (Limits, "Per principal",
 * generated from this list); each counts what the credentials the principal minted hold too. The home's credential
 * (the operator's) is held to none of the proposal bounds, nor to the connections', and keeps homeReserve above
 * every server-wide bound.
 */
export const PER_PRINCIPAL_LIMITS = [
  "maxPendingPerPrincipal",
  "maxPendingPerRun",
  "proposalsPerMinute",
  "runsPerMinute",
  "promptBytesPerHour",
  "rejectedBytesPerHour",
  "maxCodesPerPrincipal",
  "maxDevicesPerPrincipal",
  "maxConnectionsPerPrincipal",
  "maxCredentialsPerPrincipal",
  "maxHttpRequestsPerPrincipal",
  "maxSearchesPerPrincipal",
] as const satisfies readonly (keyof z.output<typeof LimitsSchema>)[];

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
  /** Settings per model alias (an alias is defined by SPOOL_MODEL_<ALIAS>): its context window, output and thinking tokens. */
  models: z
    .record(
      z.string(),
      z.strictObject({
        /** The model's context window in tokens, when neither the provider's model list nor Spool's table knows it. */
        contextTokens: z.number().int().min(1024).optional(),
        /** `max_tokens` per request (SPOOL_MODEL_<ALIAS>_MAX_TOKENS and modelMaxTokens win). */
        maxTokens: z.number().int().positive().optional(),
        /** Anthropic's extended thinking: its token budget per request (at least 1024). */
        thinkingTokens: z.number().int().min(1024).optional(),
      }),
    )
    .optional(),
  /** Prices per model id (US dollars per million tokens), over Spool's table of list prices; an id matches its longest priced prefix. */
  prices: z
    .record(
      z.string().min(1),
      z.strictObject({
        input: z.number().nonnegative(),
        output: z.number().nonnegative(),
        cacheRead: z.number().nonnegative().optional(),
        cacheWrite: z.number().nonnegative().optional(),
      }),
    )
    .optional(),
  /**
   * Budgets of runs that set none of their own (run/create `budget`): every run's (`default`), a project's by name,
   * a principal's by name (the runs it creates). A run gets, limit by limit, its own, else the smallest of these.
   */
  budgets: z
    .strictObject({
      default: Budget.optional(),
      projects: z.record(z.string(), Budget).optional(),
      principals: z.record(z.string(), Budget).optional(),
    })
    .optional(),
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
  /** MB of binary frames received between two young-generation collections, which free the chunks' buffers (src/server/scavenger.ts); 0 = V8 alone decides. */
  scavengeEveryMb: z.number().int().nonnegative().optional(),
  /** Variables of the runner's environment that commands get besides the base (PATH, HOME, LANG, TERM): names, or patterns with `*` (which never match SPOOL_* or secret-looking names). */
  commandEnv: z.array(z.string().regex(COMMAND_ENV_ENTRY, "a variable name, or a pattern with *")).optional(),
  /**
   * The sandbox mode of `sh` commands (SPEC §7 Runners, "Sandbox modes"): "auto" (the default: workspace-write where the runner a
   * plain accept picks has it, else full, saying why), "workspace-write" (always; a runner without it is refused) or "full" (none).
   */
  sandbox: z.enum(SANDBOX_SETTINGS).optional(),
  /**
   * Who may accept a command in sandbox mode full (SPEC §7 Runners, "Who may accept full"): "admin" (every unscoped
   * admin, the default), "person" (every unscoped person and admin), "principal:NAME"; [] lets nobody. A scoped
   * credential never may, whatever the list says.
   */
  sandboxFullAcceptors: z.array(z.string().regex(FULL_ACCEPTOR_ENTRY, 'a role ("admin" or "person") or "principal:NAME"')).max(64).optional(),
  /** Whether workspace-write commands keep the network (default true); false cuts it. */
  sandboxNetwork: z.boolean().optional(),
  /** Network mode `allowlist` (SPEC §7 Runners, "Sandbox modes"): the projects' lists of hosts, and the proxy's own hosts file. */
  egress: EgressConfig.optional(),
  /**
   * What read-only and workspace-write commands see besides the system, the project, a private /tmp and home and their
   * PATH's toolchains (SPEC §7 "What a command sees"): `read` paths read-only, `write` paths writable (in
   * workspace-write); `~/x` is the runner's home's x; `projects` gives a project its own (it replaces both lists).
   */
  sandboxView: SandboxViewConfig.optional(),
  /**
   * Runner pools by name (SPEC §7 "Pools"): `{"linux": {"labels": {"os": "linux"}, "principals": ["ci"]}}`. A proposal names one as
   * `runner: {pool: "linux"}`; its runners are the attached ones carrying the labels (of those principals, when named).
   */
  pools: z
    .record(PoolName, PoolConfig)
    .refine((pools) => Object.keys(pools).length <= 64, { message: "at most 64 pools" })
    .optional(),
  /** How long a turn waits for an accepted command before the model sees its output so far, in milliseconds. */
  toolYieldMs: z.number().int().nonnegative().optional(),
  /** How long the model's `kill` waits for the command to end after its signal, in milliseconds. */
  toolKillWaitMs: z.number().int().nonnegative().optional(),
  /** Tokens of command output the model sees per tool result before head/tail cutting. */
  outputTokens: z.number().int().positive().optional(),
  /** Model calls one prompt's loop may make before the loop fails (too many steps); 0 = no limit (a budget still pauses the run). */
  maxSteps: z.number().int().nonnegative().optional(),
  /** Offer the built-in demo model as the alias "demo" (no network, no key; src/model/demo.ts). */
  demoModel: z.boolean().optional(),
});
