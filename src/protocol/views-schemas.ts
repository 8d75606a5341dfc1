import { z } from "zod";
import { BACKEND_NAMES } from "./backends.js";
import { RoleName } from "./role-schemas.js";
import { NetworkFact, NetworkKind, SandboxModeName } from "./sandbox-schemas.js";
import { ENTRY } from "./status.js";

/*
 * The zod schemas of the typed views (src/protocol/views.ts reads the wire into them): a run, a proposal,
 * a producer and its channels, every field Spool itself sets named and typed. Apart from the functions so
 * that a client using only those (the web page) bundles no zod: a top-level schema is a call the bundler
 * keeps unless it can drop the whole module.
 */

const Size = z.object({ cols: z.number().int().min(1), rows: z.number().int().min(1) });

/**
 * Where the command runs: a known sandbox mode, or `unknown` with the word the server sent (a newer
 * server's mode this client cannot describe — shown as it is, never taken for another).
 */
/**
 * What a read-only or workspace-write command sees (SPEC §7 "What a command sees"), besides its project root: what its
 * runner builds (system directories, a private home, the toolchains its PATH names; null: the runner did not say) and
 * what the configuration adds.
 */
export const SandboxView = z.object({
  system: z
    .array(z.string())
    .nullable()
    .describe("The system directories it sees read-only (/etc as every user of the machine may read it); null: its runner did not say"),
  image: z.string().nullable().describe("A Docker runner's: the image whose files it sees, read-only; null: none"),
  home: z.string().nullable().describe("Its $HOME: a private, empty directory of its own; null: none said (an image's own home)"),
  toolchains: z
    .array(z.string())
    .nullable()
    .describe("The install roots of the toolchains its runner's PATH names, read-only; null: its runner did not say (none are bound)"),
  read: z.array(z.string()).describe("Paths the configuration adds read-only (`~/`: the runner's home)"),
  write: z.array(z.string()).describe("Paths the configuration adds writable in workspace-write (read-only in read-only mode)"),
  project: z
    .literal(false)
    .optional()
    .describe("false: the project is not there (its runner does not mount it: Docker with --no-mount); absent: it sees the project"),
});
export type SandboxView = z.output<typeof SandboxView>;

export const SandboxFact = z.union([
  z.object({
    mode: SandboxModeName,
    view: SandboxView.optional().describe("read-only and workspace-write: what it sees besides the project; absent: not recorded (an older proposal)"),
    acceptors: z
      .array(z.string())
      .optional()
      .describe(
        'full: who may accept it, as config.json `sandboxFullAcceptors` said when it was proposed ("admin", "person": unscoped, that role or above; "principal:NAME"); absent: not recorded',
      ),
  }),
  z.object({ mode: z.literal("unknown"), given: z.string() }),
]);
export type SandboxFact = z.output<typeof SandboxFact>;

/**
 * Who vouches for what the runner a proposal goes to says of itself: the server (its embedded runner: `own`), or the
 * principal whose credential attached a remote runner, which only claims its sandbox modes and network (SPEC §2).
 */
export const RunnerClaim = z.object({
  own: z.boolean().describe("The server's embedded runner: its sandbox is the server's own, no claim"),
  attachedBy: z.string().nullable().describe("The principal whose credential attached it; null for the embedded runner"),
  attachedAs: RoleName.nullable().describe("That credential's role when it attached"),
  modes: z.array(SandboxModeName).describe("The sandbox modes it says it runs commands in"),
  network: NetworkKind.nullable().describe("The network it says a workspace-write command gets; null: it said none"),
  root: z
    .string()
    .nullable()
    .optional()
    .describe("Where it said it runs the project root's commands (spool runner --root); null or absent: at the project root's own path"),
});
export type RunnerClaim = z.output<typeof RunnerClaim>;

/**
 * A pool a proposal goes to (SPEC §7 "Pools"), as it was when proposed: its runners, who attached them and what they all
 * have in common. Only a runner of one of these principals and backends, giving the proposal's mode (and its network),
 * takes the command: a runner another principal attaches later never does.
 */
export const PoolFact = z.object({
  name: z.string().describe("The configured pool's name, or the label selector `k=v,…`"),
  configured: z.boolean().describe("A pool the server's configuration defines (config.json `pools`)"),
  labels: z.record(z.string(), z.string()).describe("The labels its runners carry"),
  attached: z.number().int().describe("Its runners attached when it was proposed, on every server"),
  principals: z.array(z.string()).describe("Who attached them (a configured pool's principals when it names them): only their runners take it"),
  backends: z.array(z.string()).describe("Their backends (local, docker, ssh): only these take it; empty: any"),
  modes: z.array(SandboxModeName).describe("The sandbox modes every one of them says it gives (the weakest of them)"),
  networks: z.array(NetworkKind).describe("The networks they say a workspace-write command gets; more than one: which one is not known before it runs"),
  egress: z.boolean().describe("Whether every one of them says it enforces a network allowlist"),
  roots: z
    .array(z.string().nullable())
    .optional()
    .describe(
      "Where they run the project root's commands (each runner's `root`; null: at the root's own path), each once: only a runner with one of these takes it. Absent: not recorded (an older proposal; any)",
    ),
});
export type PoolFact = z.output<typeof PoolFact>;

/** What a person must see before deciding a proposal, the same on every client (unescaped; formatting escapes it). */
export const ProposalFacts = z.object({
  tool: z.string(),
  command: z.string(),
  root: z.string().nullable().describe("The project's root directory, absolute, as the server has it; null: not recorded (a proposal older than it)"),
  cwd: z.string().nullable().describe("Relative to the project root; null: the root itself"),
  env: z.array(z.tuple([z.string(), z.string()])).describe("The variables it adds to the runner's environment, in the order proposed"),
  tty: Size.nullable().describe("A pseudo-terminal of this size; null: plain pipes"),
  runner: z.string().nullable().describe("The runner it was proposed for, or that took it; null: the one the decision picks"),
  defaultRunner: z
    .string()
    .nullable()
    .describe(
      "A proposal naming no runner: the runner a decision naming none sends it to, resolved when it was proposed (the project's default, else the embedded one); null: none was attached then",
    ),
  runnerServer: z
    .string()
    .nullable()
    .optional()
    .describe(
      "With several servers sharing the database: the server (`host:port`) whose runner runs it, decided when it was proposed (`local@host:7420`); null or absent: one server only, or not recorded",
    ),
  factsRevision: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe(
      "How often the server has changed these facts while the proposal waits, plus one (absent: 1, as proposed); a server that stopped before the decision moves its proposals to a living one's runner (`runnerServer`) and raises it. run/resolve's `facts` names the revision the person was shown",
    ),
  pool: PoolFact.nullable().optional().describe("Proposed (or accepted) for a pool rather than one runner: the pool as it was then; null or absent: a runner"),
  runnerClaim: RunnerClaim.nullable().describe(
    "What the runner it goes to (named, or the default) says of its sandbox, and who attached it, as recorded when it was proposed; null: not known here (a runner of another server, or a proposal older than it)",
  ),
  background: z.boolean().describe("Long-running work started in the background (its own, longer time limit)"),
  timeoutMs: z.number().int().nullable().describe("Its time limit; null: the server's default for its kind"),
  defaultTimeoutMs: z
    .number()
    .int()
    .nullable()
    .optional()
    .describe("A proposal without a time limit: the server's default for its kind when it was proposed; null or absent: not recorded"),
  sandbox: SandboxFact,
  network: NetworkFact.nullable().describe(
    "The command's network where it runs: own (outbound only), shared (the runner machine's, its loopback ports too), none, allowlist (only the hosts of `egress`, through a proxy); null: not recorded",
  ),
  egress: z
    .object({
      hosts: z.array(z.string()).describe("The project's list (names, *.domains, addresses; optional :port)"),
      asked: z.array(z.string()).describe("Hosts the proposal asks for beyond the project's list: the person decides on these too"),
    })
    .nullable()
    .optional()
    .describe("Network allowlist: the hosts the command may reach; null or absent: no allowlist"),
});
export type ProposalFacts = z.output<typeof ProposalFacts>;

/** Where a started producer runs, as its runner reported it (`stream/started`). */
export const ProcessPlace = z.object({
  backend: z.string().nullable().describe(BACKEND_NAMES.join(", ")),
  pid: z.number().int().nullable(),
  container: z.string().nullable(),
  host: z.string().nullable(),
});
export type ProcessPlace = z.output<typeof ProcessPlace>;

/** How a producer ended: its runner finished it (`completed`), gave up (`aborted`), or someone cancelled it. */
export const Outcome = z.enum(["completed", "aborted", "cancelled"]);
export type Outcome = z.output<typeof Outcome>;

/**
 * Where a producer stands, in the word every client shows: waiting for a decision (`proposed`), `rejected`,
 * `accepted` (no output channel yet), `queued` (accepted, waiting in its pool's queue for a free runner), `running`, or how it ended: `done`, `failed` (non-zero exit or a
 * signal), `cancelled` (someone stopped it), `aborted` (its runner gave up or was lost).
 */
export const ProducerState = z.enum(["proposed", "rejected", "accepted", "queued", "running", "done", "failed", "cancelled", "aborted"]);
export type ProducerState = z.output<typeof ProducerState>;

/** One data channel of a producer (1 stdout, 2 stderr, 0 the input a client typed, higher for a producer's own). */
export const Channel = z.object({
  channel: z.number().int(),
  name: z.string().describe("The producer's name for it (stdout, stderr, stdin…), else `channel N`"),
  path: z.string(),
  log: z.string().describe("Its producer's log entry"),
  status: z.number().int(),
  bytes: z.number().int(),
  lines: z.number().int(),
  lastSeq: z.number().int().nullable().describe("The last chunk's sequence number, when the message carrying it says"),
  eofAt: z.number().int().nullable().describe("Input channel: when the end of input was sent (ms since the epoch)"),
});
export type Channel = z.output<typeof Channel>;

/** A producer: its log entry's facts, its decision, where it ran, how it ended, and its channels. */
export const Producer = ProposalFacts.extend({
  path: z.string().describe("Its log entry, log://turn_N/{tool}/{slug}: what clients resolve, cancel and read"),
  status: z.number().int().describe(`The log entry's status: ${ENTRY.proposed} proposed, ${ENTRY.done} accepted, ${ENTRY.rejected} rejected`),
  state: ProducerState,
  turn: z.number().int(),
  slug: z.string().nullable(),
  sandboxNetwork: z.boolean().nullable().describe("workspace-write: whether the network is on"),
  sandboxReason: z.string().nullable().describe("Why the mode is not the configured one (auto with a runner without a sandbox)"),
  proposedBy: z.string().nullable().describe("The client or model that proposed it"),
  loop: z.number().int().nullable().describe("The loop whose model proposed it; null for a client's proposal"),
  toolCallId: z.string().nullable().describe("The model's tool call it answers; null for a client's proposal"),
  decision: z.enum(["accept", "reject"]).nullable(),
  resolvedBy: z.string().nullable().describe("Who decided: a principal's name and its client's (`alice via spool-cli`), a rule, or run/abort"),
  reason: z.string().nullable().describe("Why it was rejected, accepted, aborted or cancelled (the latest said)"),
  process: ProcessPlace.nullable(),
  outcome: Outcome.nullable(),
  endStatus: z.number().int().nullable().describe("Its channels' terminal status once it ended"),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  durationMs: z.number().nullable(),
  acceptedAt: z
    .number()
    .int()
    .nullable()
    .describe(
      "When it was accepted and its output channels opened (ms since the epoch, by the server's clock): how long a running command has run; null before",
    ),
  cancelledBy: z.string().nullable(),
  queue: z
    .object({
      pool: z.string().describe("The queue's key: pool:NAME, labels:k=v,… or runner:NAME"),
      position: z.number().int().describe("Its place in line there: 1 is taken next"),
      since: z.number().int().describe("When it was queued (ms since the epoch, by the server's clock)"),
    })
    .nullable()
    .optional()
    .describe("Queued (entry/get, entry/list): where it waits for a free runner; null or absent otherwise"),
  egressReached: z
    .object({
      allowed: z.array(z.string()).describe("Hosts (host:port) the egress proxy connected it to"),
      blocked: z.array(z.string()).describe("Hosts (host:port) the egress proxy refused"),
    })
    .nullable()
    .optional()
    .describe("Network mode allowlist, once it ended: where it went; null or absent: not recorded (no allowlist, or not ended)"),
  modelSeen: z.record(z.string(), z.number()).nullable().describe("Lines of each channel the model has been shown"),
  channels: z.array(Channel).describe("In channel order"),
  extra: z.record(z.string(), z.unknown()).describe("Attributes a plugin set that Spool does not name"),
});
export type Producer = z.output<typeof Producer>;

/** Limits on what a run may spend; a run at one pauses before its next model call. */
export const Budget = z
  .strictObject({
    tokens: z.number().int().positive().optional().describe("Tokens (input and output) its model calls may use"),
    costUsd: z.number().positive().optional().describe("US dollars its model calls may cost (the price table's)"),
    seconds: z.number().int().positive().optional().describe("Seconds of work: its model calls and tool steps (waiting on a person not counted)"),
    commands: z.number().int().positive().optional().describe("Commands of its that may run (accepted proposals)"),
  })
  .describe("Limits; absent ones are unlimited");
export type Budget = z.output<typeof Budget>;

/** Which budget a paused run reached, its limit and what was used. */
export const BudgetReached = z.object({
  kind: z.enum(["tokens", "costUsd", "seconds", "commands"]),
  limit: z.number(),
  used: z.number(),
});

/** What a run spent so far. */
export const Spend = z.object({
  tokens: z.number().int(),
  costUsd: z.number(),
  seconds: z.number(),
  commands: z.number().int(),
});

/** A run as `run/list`, `run/get` and `run/create` return it. */
export const RunView = z.object({
  alias: z.string(),
  model: z.string().nullable(),
  mode: z.enum(["ask", "act"]),
  status: z.number().int(),
  turn: z.number().int(),
  title: z.string().nullable(),
  pending: z
    .number()
    .int()
    .describe(
      "Its proposals waiting for a decision, whoever made them (its model or a client); runState (spool/protocol) turns it and `status` into the word every client shows",
    ),
  rejected: z
    .number()
    .int()
    .optional()
    .describe(
      "Of a finished run with a model: the proposals made since its latest prompt that were rejected (by a person, a rule or the deadline); runState shows such a run as `rejected` rather than `done`",
    ),
  spend: Spend.optional().describe("What it spent: tokens, cost, seconds of work, commands run"),
  budget: Budget.nullable()
    .optional()
    .describe("Its budget: its own limits, else the defaults of its project and its creator's principal (config.json `budgets`); null: none"),
  paused: BudgetReached.nullable().optional().describe("Paused (status 402): the budget it reached; raise it with run/budget, or stop the run with run/abort"),
  lastCommand: z
    .enum(["succeeded", "failed", "cancelled", "interrupted"])
    .optional()
    .describe(
      "Of a finished run with a model: how the latest command accepted since its latest prompt ended (exit 0; non-zero or a signal; cancelled; aborted by its runner, lost or timed out); runState shows a run whose last command did not succeed by that word rather than `done`. Absent: no command ended since",
    ),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});
export type RunView = z.output<typeof RunView>;

/** A proposal waiting for a decision (`run/proposal`, `proposal/list`): which run, when, and its producer. */
export const ProposalView = z.object({
  run: z.string(),
  path: z.string(),
  turn: z.number().int(),
  loop: z.number().int().nullable(),
  toolCallId: z.string().nullable(),
  createdAt: z.number().int().nullable(),
  producer: Producer,
});
export type ProposalView = z.output<typeof ProposalView>;
