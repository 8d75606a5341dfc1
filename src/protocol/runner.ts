import { z } from "zod";
import { BACKEND_NAMES } from "./backends.js";
import { MAX_EGRESS_RULES } from "./egress.js";
import { RunnerLabels } from "./pools.js";
import { RoleName } from "./role-schemas.js";
import { SANDBOX_MODES } from "./sandbox.js";
import { NetworkKind, SandboxModeName } from "./sandbox-schemas.js";

/**
 * Where a backend runs sandboxed work (SPEC §7 Runners, "Sandbox modes"):
 * read-only work (the `env` tool, `ask` runs) where writes fail, sh commands
 * in workspace-write where only the project is writable — or nowhere: then
 * the runner says so at attach (its modes) and the server refuses such work
 * on it.
 */
export const SandboxKind = z.enum(["bwrap", "docker", "none"]);

const ViewPath = z.string().min(1).max(4096);

/**
 * What this runner's read-only and workspace-write commands see besides their project and the paths the
 * configuration adds (SPEC §7 "What a command sees"), as the runner builds it: every proposal shows it as a fact.
 */
export const RunnerView = z.strictObject({
  system: z.array(ViewPath).max(32).describe("The system directories it binds read-only (/etc as every user of the machine may read it)"),
  image: z.string().max(500).optional().describe("A Docker runner's: the image whose files a command sees, read-only"),
  home: ViewPath.nullable().describe("Where a command's private, empty home is ($HOME); null: none of its own (an image's home)"),
  toolchains: z.array(ViewPath).max(64).describe("The install roots of the toolchains the runner's PATH names (real paths), bound read-only"),
  project: z
    .literal(false)
    .optional()
    .describe("false: the project is not there (a Docker runner with --no-mount): its commands see none of it; absent: they see the project"),
});
export type RunnerView = z.output<typeof RunnerView>;

export const SandboxInfo = z.strictObject({
  kind: SandboxKind.describe("bwrap (bubblewrap, on the runner's machine or the SSH host), docker (a read-only container), or none"),
  readOnly: z.boolean().describe("Whether read-only commands run where writes fail; false: the server refuses read-only work on this runner"),
  detail: z.string().max(500).describe("What the sandbox is, or why there is none"),
  modes: z
    .array(SandboxModeName)
    .max(SANDBOX_MODES.length)
    .optional()
    .describe("The sandbox modes this runner can run a command in; absent (a runner older than sandbox modes): read-only when readOnly, and full"),
  network: NetworkKind.optional().describe(
    "A workspace-write command's network (on a Docker runner, a full one's too): own (a namespace of its own, outbound only: it cannot reach or bind the host's loopback), shared (the runner machine's), none; absent: not said",
  ),
  egress: z
    .boolean()
    .optional()
    .describe(
      "Whether it enforces a network allowlist (an egress proxy as the workspace-write command's one way out); absent or false: such commands are refused on it",
    ),
  view: RunnerView.optional().describe(
    "What its sandboxed commands see besides the project and the configured paths; absent: an older runner, which is sent no view (it hides what it knows instead)",
  ),
});
export type SandboxInfo = z.output<typeof SandboxInfo>;

/** The modes a runner offers, also for one that attached without saying (older runners: read-only when it has that sandbox, and full). */
export function sandboxModes(info: SandboxInfo): SandboxModeName[] {
  return info.modes ?? (info.readOnly ? ["read-only", "full"] : ["full"]);
}

/** A runner with no sandbox: only full work runs there; `detail` says why. */
export const noSandbox = (detail: string): SandboxInfo => ({ kind: "none", readOnly: false, detail, modes: ["full"] });

/**
 * What holds a command's processes on a runner (SPEC §7 "Stopped means stopped"): a cgroup v2 or a PID namespace
 * of its own per command, which nothing inside can leave and which is killed on cancel, timeout and restart; or
 * none, where a daemonised process escapes them.
 */
export const ContainerInfo = z.strictObject({
  kind: z.enum(["cgroup", "pid-namespace", "none"]).describe("cgroup (a cgroup v2 per command), pid-namespace (a PID namespace per command), or none"),
  diesWithRunner: z
    .boolean()
    .describe("Whether a command dies with the runner process (killed, crashed); false: a lost runner's producers may still be running until its next start"),
  detail: z.string().max(500).describe("What the container is, or why there is none"),
});
export type ContainerInfo = z.output<typeof ContainerInfo>;

/** The largest capacity a runner may attach with (commands at once). */
export const MAX_RUNNER_CAPACITY = 1024;

/**
 * What a runner is doing about new work (runner/list): `claiming` (it takes commands from its pools' queues),
 * `draining` (spool runners drain: it takes nothing new, its running commands finish), `gone` (it went away while it
 * had work; only it can take its name back until the grace ends).
 */
export const RunnerState = z.enum(["claiming", "draining", "gone"]);
export type RunnerState = z.output<typeof RunnerState>;

/**
 * The runner messages, shared by the server side (`runners` plugin) and the
 * runner side (`RunnerClient`): one schema each for validation, types and docs.
 */

/** A backend of the table in backends.ts. */
export const BackendName = z.enum(BACKEND_NAMES);

export const RunnerName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "a runner name is 1-64 lowercase letters, digits, '.', '_' or '-'")
  .refine((name) => name !== "self", { message: '"self" is reserved: it means the accepting client streams the output itself' })
  .describe("Runner name, unique among the project's attached runners");

export const ProducerRef = z.strictObject({ run: z.string(), path: z.string() });

export const RunnerAttachParams = z.strictObject({
  name: RunnerName,
  backend: BackendName,
  description: z.string().max(500).optional().describe("Where it runs commands, for runner/list"),
  labels: RunnerLabels.optional().describe('What pools select it by (`{labels: {os: "linux"}}`, config.json `pools`); shown by runner/list'),
  capacity: z
    .number()
    .int()
    .min(1)
    .max(MAX_RUNNER_CAPACITY)
    .optional()
    .describe("Commands it runs at once; more accepted for it wait in its pool's queue until one ends. Absent: no limit"),
  default: z.boolean().optional().describe("Receive accepted proposals that name no runner; one runner at most is the project's default"),
  replaceDefault: z.boolean().optional().describe("With default: take the default from the runner that has it instead of being refused"),
  resume: z.array(ProducerRef).max(1024).optional().describe("Producers this runner is still executing (after a reconnect); needs resumeToken"),
  resumeToken: z.string().min(16).max(200).optional().describe("The token an earlier runner/attach of this runner returned: proves it is the same runner"),
  sandbox: SandboxInfo.optional().describe(
    "Where this runner runs read-only work and which sandbox modes it offers; without it (or readOnly false) the server refuses read-only work on it, and without modes workspace-write",
  ),
  container: ContainerInfo.optional().describe(
    'What holds each command\'s processes (SPEC §7 "Stopped means stopped"); diesWithRunner false: a lost runner\'s producers end 499 "runner lost, may still be running"',
  ),
  host: z.string().max(255).optional().describe("The machine it runs commands on (its host name), as it says: shown in runner/list"),
  root: z
    .string()
    .min(1)
    .max(4096)
    .optional()
    .describe(
      "Where it runs the project root's commands when that is not the root's own path (spool runner --root: another machine's checkout, a container's mount; `~`: an SSH login's directory): every proposal for it shows its cwd there",
    ),
});

export const ResumedProducer = ProducerRef.extend({
  lastSeq: z.record(z.string(), z.number().int()).describe("Last stored seq per channel number: resend what follows"),
});

export const RunnerAttachResult = z.object({
  name: z.string(),
  project: z.string(),
  resumed: z.array(ResumedProducer).describe("Producers still open: continue streaming them"),
  finished: z.array(ProducerRef.extend({ status: z.number().int() })).describe("Producers already finished (cancelled, lost): kill them"),
  maxUnackedChunks: z.number().int().describe("Unanswered stream and finishing calls this connection may have at once"),
  resumeToken: z.string().describe("Keep it: re-attach with it after a reconnect to take this runner's producers back"),
  runnerGraceMs: z
    .number()
    .int()
    .describe("How long the server waits for a dropped runner (or, after a restart, for any owner) to come back; the runner reconnects well within it"),
  default: z.boolean().describe("Whether this runner is the project's default"),
});

export const RunnerInfo = z.object({
  name: z.string(),
  backend: BackendName,
  description: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  default: z.boolean(),
  embedded: z.boolean(),
  attachedAt: z.number().int(),
  running: z.number().int().describe("Producers this runner is executing"),
  capacity: z.number().int().nullable().optional().describe("Commands it runs at once (its load is running / capacity); null: no limit"),
  pools: z.array(z.string()).optional().describe("The configured pools (config.json `pools`) it is in"),
  sandbox: SandboxInfo.describe(
    "Its sandbox: where it runs read-only work (env, ask runs; readOnly false: such work is refused on it) and the modes (read-only, workspace-write, full) it can run a command in",
  ),
  container: ContainerInfo.optional().describe("What holds each command's processes on it, as it said at attach (absent: it did not say)"),
  attachedBy: z
    .object({ name: z.string(), role: RoleName })
    .nullable()
    .optional()
    .describe(
      "The principal whose credential attached it (it owns the name), and that credential's role; null: the server's embedded runner; absent: an older server",
    ),
  server: z.string().optional().describe("The server it is attached to, `host:port` (several may share a database); absent: an older server"),
  host: z
    .string()
    .nullable()
    .optional()
    .describe("The machine it runs commands on, as it said at attach (the embedded runner: the server's); null or absent: it did not say"),
  root: z
    .string()
    .nullable()
    .optional()
    .describe(
      "Where it runs the project root's commands, as it said at attach (`--root`; `~`: an SSH login's directory; a Docker runner without the project mounted: the container's WORKDIR); null or absent: at the project root's own path",
    ),
  state: RunnerState.describe(
    "claiming: it takes accepted commands; draining: it takes nothing new, its running commands finish (spool runners drain); gone: it went away while it had work, and only it can take its name back",
  ),
  heldUntil: z.number().int().nullable().describe("For a gone runner: when its name and producers are given up (ms since the epoch)"),
  resting: z
    .object({
      until: z.number().int().describe("When it takes queued commands again (ms since the epoch)"),
      failedStarts: z.number().int().describe("Its starts that failed in a row"),
    })
    .optional()
    .describe(
      "A runner attached to the server answering whose last starts failed: until `until` it takes no queued command and no pool chooses it (1 s, doubled at each failed start in a row, up to 60 s). Absent: it is not resting, or it is attached to another server",
    ),
});

export const ExecTarget = z.object({
  backend: BackendName,
  pid: z.number().int().optional(),
  container: z.string().optional(),
  host: z.string().optional(),
});

/** A terminal's size in character cells. */
export const TtySize = z.strictObject({
  cols: z.number().int().min(1).max(1000).describe("Columns"),
  rows: z.number().int().min(1).max(1000).describe("Rows"),
});

/** The signals a client may send to a running producer (without the SIG prefix). */
export const ControlSignal = z.enum(["INT", "TERM", "HUP", "QUIT", "USR1", "USR2", "WINCH", "KILL"]);

export const RunnerExecParams = z.strictObject({
  run: z.string(),
  path: z.string().describe("The producer's log entry"),
  command: z.string(),
  cwd: z.string().describe("Absolute working directory on the server's machine (project root + the proposal's cwd)"),
  cwdRelative: z.string().describe('The same, relative to the project root ("" = the root), for runners that map the root elsewhere'),
  env: z.record(z.string(), z.string()),
  channels: z.array(z.object({ channel: z.number().int(), name: z.string(), path: z.string() })),
  timeoutMs: z.number().int().min(0).describe("Kill the command after this long; 0 = no limit"),
  readOnly: z.boolean().optional().describe("Read-only work (env, ask runs): run it in the runner's read-only sandbox, or refuse it"),
  sandbox: SandboxModeName.optional().describe(
    'The sandbox mode to run it in (SPEC §7 Runners, "Sandbox modes"); absent: read-only with readOnly, else full. Sent only to runners whose sandbox lists modes',
  ),
  network: z.boolean().optional().describe("workspace-write: false cuts the command off the network (the server's sandboxNetwork)"),
  egress: z
    .array(z.string().max(300))
    .max(2 * MAX_EGRESS_RULES)
    .optional()
    .describe(
      "workspace-write in network mode allowlist: the hosts its egress proxy may connect to (the project's list and the accepted asked ones), and no other way out",
    ),
  view: z
    .strictObject({
      toolchains: z.array(ViewPath).max(64).describe("The toolchains' roots the proposal showed (the runner's own report), bound read-only"),
      read: z.array(ViewPath).max(64).describe("Paths the configuration adds read-only (`~/`: the runner's home)"),
      write: z.array(ViewPath).max(64).describe("Paths the configuration adds writable in workspace-write"),
    })
    .optional()
    .describe(
      "What the sandboxed command sees besides the system, the project and its private /tmp and home, as its facts showed; sent to runners that report a view",
    ),
  secrets: z
    .array(ViewPath)
    .max(64)
    .optional()
    .describe(
      "Paths of the server's own state (home, token file, database): the runner refuses a sandboxed command whose view would hold one (checked, never mounted over), besides its own",
    ),
  passEnv: z
    .array(z.string())
    .optional()
    .describe("Names (or `*` patterns) of the runner's environment variables the command also gets (the server's commandEnv); see SPEC §7 Environment"),
  tty: TtySize.optional().describe("Run the command under a pseudo-terminal of this size: its output all comes on channel 1"),
});

export const RunnerExecResult = z.object({
  started: z.boolean().describe("False when the command could not be started; the runner has sent stream/aborted"),
  target: ExecTarget.optional().describe("Where the process runs (for logs, and for tests that check it is gone)"),
  error: z.string().optional(),
});

export type RunnerExecParams = z.output<typeof RunnerExecParams>;
export type RunnerExecResult = z.output<typeof RunnerExecResult>;
export type RunnerAttachResult = z.output<typeof RunnerAttachResult>;

/**
 * What the server relays to a producer's owner (a runner, or the client that
 * accepted it with runner "self") when a client calls stream/input,
 * stream/eof, stream/signal or stream/resize. The owner applies it and
 * answers, or answers an error (UNSUPPORTED with the reason, STREAM_CLOSED,
 * LIMIT_EXCEEDED); an owner without a handler answers METHOD_NOT_FOUND,
 * which the caller gets as UNSUPPORTED.
 */
export const ProducerInputParams = z.strictObject({
  ...ProducerRef.shape,
  data: z.string().describe("The bytes for the command's stdin (or terminal), base64"),
  seq: z.number().int().min(1).describe("Channel 0's chunk number: a repeat of one already applied is acknowledged without writing again"),
});
export const ProducerEofParams = ProducerRef;
export const ProducerSignalParams = z.strictObject({ ...ProducerRef.shape, signal: ControlSignal });
export const ProducerResizeParams = z.strictObject({ ...ProducerRef.shape, ...TtySize.shape });
export const ProducerControlResult = z.object({ applied: z.literal(true) });

export type TtySize = z.output<typeof TtySize>;
export type ControlSignal = z.output<typeof ControlSignal>;
