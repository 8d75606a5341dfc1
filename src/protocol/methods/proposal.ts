import { z } from "zod";
import { ProposalNotice, RunAlias, RunnerRef, Traceparent } from "../common.js";
import { request } from "../define.js";
import { EgressList } from "../egress-schema.js";
import { TtySize } from "../runner.js";
import { SandboxModeName } from "../sandbox-schemas.js";

/** A process's arguments, directory and environment are C strings: a NUL byte would cut them short, so it is refused up front. */
const withoutNul = (what: string) => [(value: string) => !value.includes("\0"), `${what} must not contain NUL bytes`] as const;

export const ProposalCreateParams = z.strictObject({
  run: RunAlias,
  tool: z.string().min(1).describe("A registered producer: sh, env, …"),
  command: z
    .string()
    .min(1)
    .max(64 * 1024)
    .refine(...withoutNul("a command"))
    .describe("The shell command (no NUL bytes)"),
  cwd: z
    .string()
    .min(1)
    .max(4096)
    .refine(...withoutNul("a directory"))
    .optional()
    .describe("Working directory, relative to the project root (default: the root); it may not lead outside the root, symbolic links included"),
  env: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name is letters, digits and '_', not starting with a digit"),
      z.string().refine(...withoutNul("a value")),
    )
    .optional()
    .describe("Extra environment variables (no NUL bytes)"),
  timeout_ms: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600 * 1000)
    .optional()
    .describe("Kill the command after this long (default: the server's commandTimeoutMs)"),
  background: z
    .boolean()
    .optional()
    .describe(
      "Long-running work (a dev server, a watcher): its time limit is the server's backgroundTimeoutMs unless timeout_ms says otherwise; recorded as the proposal's `background` attribute and shown before the decision",
    ),
  tty: TtySize.optional().describe("Run it under a pseudo-terminal of this size (its output all comes on channel 1; stream/resize changes the size)"),
  runner: RunnerRef.optional().describe(
    'The runner to run it on, recorded as the proposal\'s `runner` attribute and shown before the decision (its sandbox mode is the one that runner gives): an accept naming no runner uses it, one naming another is CONFLICT. Must be attached to the project (runner/list) or be the embedded one; else NO_RUNNER, and nothing is stored. Not "self". Or a pool: `{pool: NAME}` (config.json `pools`) or `{labels: {os: "linux"}}` (any runner carrying them), recorded as the `pool` fact (its runners, who attached them, what they have in common); one free runner of it takes the accepted command, which waits in the pool\'s queue while all are busy. A pool with no runner attached is NO_RUNNER, unless the configuration names its principals',
  ),
  sandbox: SandboxModeName.optional().describe(
    'The sandbox mode to run it in (read-only, workspace-write, full); default: the server\'s `sandbox` setting. Recorded as the proposal\'s `sandbox` attribute and shown before the decision; "full" leaves the sandbox (and no "always allow" rule accepts it). The env tool runs read-only only',
  ),
  allow_hosts: EgressList.optional().describe(
    'Network mode allowlist: hosts the command needs beyond the project\'s list (config.json `egress`), as "registry.npmjs.org", "*.github.com", "example.org:8443" or an address; shown before the decision as asked hosts. Only for workspace-write on a runner that enforces an allowlist (else UNSUPPORTED)',
  ),
  traceparent: Traceparent.optional(),
});

export const proposalCreate = request({
  name: "proposal/create",
  role: "agent",
  ownRuns: true,
  description:
    "Proposes a command for a run, exactly as the model would: the log entry is written at 202 (its attributes say the sandbox mode it will run in) and `run/proposal` goes to every connection of the project. An env naming loader variables (LD_*, DYLD_*, GCONV_PATH, GLIBC_TUNABLES and the like) is refused.",
  params: ProposalCreateParams,
  result: z.object({ path: z.string(), turn: z.number().int() }),
});

export const ProposalListParams = z.strictObject({
  run: RunAlias.optional().describe("Only this run's proposals (default: every run of the project)"),
  after: z.number().int().min(0).optional().describe("Continue after this cursor (the `next` of the previous page)"),
  limit: z.number().int().min(1).max(200).optional().describe("Proposals per page (default 50)"),
});

export const proposalList = request({
  name: "proposal/list",
  role: "viewer",
  description:
    "Lists the project's pending proposals (still proposed), oldest first, a page at a time: what `run/proposal` announced and nobody has decided yet.",
  params: ProposalListParams,
  result: z.object({
    proposals: z.array(ProposalNotice),
    next: z.number().int().nullable().describe("Cursor for the next page; null on the last one"),
  }),
});
