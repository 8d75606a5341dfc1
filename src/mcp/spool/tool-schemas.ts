import { z } from "zod";
import { EntryGetParams, EntrySearchParams, SEARCH_MAX_CONTEXT } from "../../protocol/methods/entry.js";
import { ProposalCreateParams } from "../../protocol/methods/proposal.js";
import { KEY_NAMES } from "./text.js";

/*
 * The tools spool mcp offers, as tools/list shows them: each one's description, title and annotations, and the zod shape of its
 * arguments (the SDK turns it into the JSON Schema a client reads, and checks a call's arguments with it).
 */

/** The terminal a `tty: true` command gets. */
export const DEFAULT_TTY = { cols: 120, rows: 40 };

export const TOOL_DESCRIPTIONS = {
  run_command:
    "Runs a shell command through Spool. It becomes a proposal that a person approves or rejects (in the Spool web view, `spool pending`/`spool approve`, an ACP editor, or here when this client supports elicitation) unless an 'always allow' rule of the run accepts it. Once accepted it runs on a Spool runner (local process, Docker or SSH; sandboxed where the runner can), its output streams as progress notifications, and the result is what a terminal would finally show (long output cut to a head and a tail, failure lines from the middle kept) with the exit code, signal, duration and the command's path. It runs on the runner named by `runner` (or the one spool mcp was started with), which the person deciding is shown. With background: true it returns as soon as the command is accepted; reach it later by its path with read_output, send_input, signal and cancel. A rejection comes back as an error result naming who rejected it and why.",
  read_output:
    "Reads a command's output by its path (the log path run_command returned, one channel's path, or a spool:// resource URI): all of it (a big output cut to a head and a tail with the failure lines of the middle, and a note on how to read the rest), the last `tail` lines, or `limit` lines from `line`; `view` model (default: as a terminal shows it) or raw (the bytes as text). With `pattern` it searches the stored output instead (no approval needed): the lines holding it with their line numbers, as grep -n prints them.",
  send_input:
    "Types into a running command: `text` as it is, then `keys` by name, then (with eof) ends its input. For a command started with tty, keys are what a terminal sends.",
  signal: "Sends a signal (INT, TERM, HUP, QUIT, USR1, USR2, WINCH, KILL) to a running command's process group. The command ends only if it does.",
  cancel: `Stops a command: a running one is cancelled (its process is killed, its output kept); a proposal still waiting for a decision is withdrawn (rejected).`,
  list_commands: "Lists this connection's commands (its Spool run): path, state (pending, running, done, failed, cancelled, rejected), exit code and command.",
} as const;

export type ToolName = keyof typeof TOOL_DESCRIPTIONS;

/** Each tool's title and what it does to the world (MCP's annotations), as tools/list shows them. */
export const TOOL_TRAITS: Record<
  ToolName,
  { title: string; annotations: { readOnlyHint: boolean; destructiveHint?: boolean; idempotentHint?: boolean; openWorldHint?: boolean } }
> = {
  run_command: {
    title: "Run a shell command (after a person approves it)",
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
  },
  read_output: { title: "Read a command's output", annotations: { readOnlyHint: true, openWorldHint: false } },
  send_input: {
    title: "Type into a running command",
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
  },
  signal: { title: "Signal a running command", annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false } },
  cancel: { title: "Cancel a command", annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false } },
  list_commands: { title: "List this connection's commands", annotations: { readOnlyHint: true, openWorldHint: false } },
};

/** A zod schema of a tool's input shape (the SDK turns it into the JSON Schema `tools/list` shows). */
const PathArg = z.string().min(1).describe("A command's log path (log://turn_N/sh/slug), one of its channels, or its spool://RUN/PATH resource URI");

export const RunCommandArgs = {
  command: z.string().min(1).describe("The shell command (run by /bin/sh -c)"),
  cwd: z.string().min(1).optional().describe("Working directory relative to the project root (default: the root); it may not lead outside it"),
  env: z.record(z.string(), z.string()).optional().describe("Extra environment variables"),
  tty: z
    .union([z.boolean(), z.object({ cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) })])
    .optional()
    .describe(`Run it under a pseudo-terminal (true: ${DEFAULT_TTY.cols}×${DEFAULT_TTY.rows}, or {cols, rows}); send_input then types into it`),
  // The bounds proposal/create checks, said for this tool.
  timeout_ms: ProposalCreateParams.shape.timeout_ms.describe("Kill it after this long (default: the server's command time limit)"),
  background: ProposalCreateParams.shape.background.describe(
    "Long-running work (a dev server, a watcher): return as soon as it is accepted, with its path, instead of waiting for it to finish; its time limit is the server's longer one for background work unless timeout_ms is given",
  ),
  allow_hosts: ProposalCreateParams.shape.allow_hosts.describe(
    'Hosts it needs to reach beyond the project\'s network allowlist ("pypi.org", "*.pythonhosted.org"), shown to the person who decides; only where the project has one or the command asks (workspace-write on a runner that enforces it)',
  ),
  runner: ProposalCreateParams.shape.runner.describe(
    "The Spool runner to run it on (a name from `spool runners`: the local machine, a Docker container, an SSH host), shown to the person who decides; default: the one spool mcp was started with (--runner), else the one the decision picks. An unknown name is refused before anything is proposed",
  ),
};

export const ReadOutputArgs = {
  path: PathArg,
  // The bounds entry/get checks, said for this tool.
  tail: EntryGetParams.shape.tail.describe("Only the last N lines"),
  line: EntryGetParams.shape.line.describe("First line of a slice (1-based)"),
  limit: EntryGetParams.shape.limit.describe("Lines in the slice"),
  offset: EntryGetParams.shape.offset.describe(
    "With line (and no limit): the rest of that one line from this byte — the next part of a line longer than one read returns",
  ),
  view: z.enum(["model", "raw"]).optional().describe("model (default): as a terminal finally shows it; raw: the bytes as text"),
  // A search instead of a read (entry/search): no approval needed, nothing runs.
  pattern: EntrySearchParams.shape.pattern
    .optional()
    .describe("Only the lines holding this text, searched in all the stored output (also the part a cut view left out), with their line numbers"),
  regex: z.boolean().optional().describe("With pattern: it is a regular expression (RE2 syntax: no backreferences or lookaround)"),
  ignore_case: z.boolean().optional().describe("With pattern: letters match in either case"),
  context: z.number().int().min(0).max(SEARCH_MAX_CONTEXT).optional().describe("With pattern: lines shown around each match (default 0)"),
  from_line: EntrySearchParams.shape.fromLine.describe("With pattern: search from this line (a cut answer says where to go on)"),
};

export const SendInputArgs = {
  path: PathArg,
  text: z.string().optional().describe("Text to type, as it is (add \\n or an Enter key to submit a line)"),
  keys: z.array(z.string()).optional().describe(`Keys to press after the text: ${KEY_NAMES}`),
  eof: z.boolean().optional().describe("Then end its input (stdin closes; under a terminal, ^D)"),
};

export const SignalArgs = {
  path: PathArg,
  signal: z.enum(["INT", "TERM", "HUP", "QUIT", "USR1", "USR2", "WINCH", "KILL"]).describe("The signal's name without SIG"),
};

export const CancelArgs = { path: PathArg, reason: z.string().optional().describe("Why (recorded with the command)") };

export const ListCommandsArgs = {
  state: z
    .enum(["pending", "running", "finished", "all"])
    .optional()
    .describe("pending: waiting for a decision; running; finished (done, failed, cancelled, rejected); all (default)"),
};

/** A tool's arguments as its handler gets them (checked against its shape). */
export type ArgsOf<A extends z.ZodRawShape> = z.infer<z.ZodObject<A>>;
