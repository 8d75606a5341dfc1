import { z } from "zod";
import { SandboxInfo } from "./sandbox.js";

/**
 * The runner messages, shared by the server side (`runners` plugin) and the
 * runner side (`RunnerClient`): one schema each for validation, types and docs.
 */

export const BackendName = z.enum(["local", "docker", "ssh"]);

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
  labels: z.record(z.string(), z.string()).optional(),
  default: z.boolean().optional().describe("Receive accepted proposals that name no runner; one runner at most is the project's default"),
  replaceDefault: z.boolean().optional().describe("With default: take the default from the runner that has it instead of being refused"),
  resume: z.array(ProducerRef).max(1024).optional().describe("Producers this runner is still executing (after a reconnect); needs resumeToken"),
  resumeToken: z.string().min(16).max(200).optional().describe("The token an earlier runner/attach of this runner returned: proves it is the same runner"),
  sandbox: SandboxInfo.optional().describe("Where this runner runs read-only work; without it (or readOnly false) the server refuses read-only work on it"),
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
  sandbox: SandboxInfo.describe("Where it runs read-only work (env, ask runs); readOnly false: such work is refused on it"),
  state: z.enum(["attached", "disconnected"]).describe("disconnected: it went away while it had work; only it can take its name back"),
  heldUntil: z.number().int().nullable().describe("For a disconnected runner: when its name and producers are given up (ms since the epoch)"),
});

export const ExecTarget = z.object({
  backend: BackendName,
  pid: z.number().int().optional(),
  container: z.string().optional(),
  host: z.string().optional(),
});

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
  passEnv: z
    .array(z.string())
    .optional()
    .describe("Names (or `*` patterns) of the runner's environment variables the command also gets (the server's commandEnv); see SPEC §7 Environment"),
});

export const RunnerExecResult = z.object({
  started: z.boolean().describe("False when the command could not be started; the runner has sent stream/aborted"),
  target: ExecTarget.optional().describe("Where the process runs (for logs, and for tests that check it is gone)"),
  error: z.string().optional(),
});

export type RunnerExecParams = z.output<typeof RunnerExecParams>;
export type RunnerExecResult = z.output<typeof RunnerExecResult>;
export type RunnerAttachResult = z.output<typeof RunnerAttachResult>;
