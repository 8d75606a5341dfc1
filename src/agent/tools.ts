import { z } from "zod";
import type { Core } from "../core/index.js";
import { ENTRY } from "../core/status.js";
import { channelFromRow, type EntryRow, lineCount, producerFromRow } from "../core/views.js";
import { channelModelView, renderOptionsFor } from "../model/model-view.js";
import type { ToolCall, ToolSpec } from "../model/provider.js";
import { renderTerminalText } from "../model/terminal.js";
import { TYPED_LABEL, transcript } from "../model/transcript.js";
import { EgressList } from "../protocol/egress-schema.js";
import { SEARCH_DEFAULT_MATCHES, SEARCH_MAX_CONTEXT, SEARCH_MAX_MATCHES, SEARCH_MAX_PATTERN } from "../protocol/methods/entry.js";
import { ControlSignal } from "../protocol/runner.js";
import { grepTool } from "./grep-tool.js";
import {
  awaitAnswer,
  describeParts,
  inputRefusal,
  listJobs,
  MODEL_TTY,
  markSeen,
  newOutput,
  producerOf,
  sendParts,
  statusLines,
  statusText,
  writeParts,
} from "./interactive.js";
import type { ToolContext } from "./tool-context.js";

export type { ToolContext } from "./tool-context.js";

/** A command or directory with a NUL byte cannot reach a process intact: the model is told so, nothing is proposed. */
const noNul = [(value: string) => !value.includes("\0"), "must not contain NUL bytes"] as const;

/** The tools' arguments: one schema each, used for the model's tool list and to check what it sends. */
const ToolArgs = {
  sh: z.strictObject({
    command: z
      .string()
      .min(1)
      .refine(...noNul)
      .describe("A shell command (/bin/sh -c). A person must accept it before it runs."),
    cwd: z
      .string()
      .refine(...noNul)
      .optional()
      .describe("Directory relative to the project root"),
    tty: z.boolean().optional().describe("Run it under a terminal (120x40), for programs that want one: prompts, REPLs, full-screen tools"),
    background: z
      .boolean()
      .optional()
      .describe("Long-running work (a dev server, a watch build): once accepted, you get its path at once; it is not cut at the usual time limit"),
    allow_hosts: EgressList.optional().describe(
      'Hosts the command needs to reach beyond the project\'s network allowlist ("pypi.org", "*.pythonhosted.org", "example.org:8443"); the person sees them before deciding',
    ),
  }),
  env: z.strictObject({
    command: z
      .string()
      .min(1)
      .refine(...noNul)
      .describe("A read-only command that inspects the environment (ls, cat, git status…)"),
  }),
  get: z.strictObject({
    path: z.string().describe("An entry path, e.g. sh://turn_1/ls_1"),
    tail: z.number().int().min(1).optional().describe("Only the last N lines"),
    line: z.number().int().min(1).optional().describe("First line of a slice (1-based)"),
    limit: z.number().int().min(1).optional().describe("Lines in the slice"),
  }),
  grep: z.strictObject({
    path: z
      .string()
      .describe(
        "A command's output channel (sh://turn_1/make_1), its log path (log://…: all its output), or conversation:// (this run's whole conversation, compacted parts included)",
      ),
    pattern: z.string().min(1).max(SEARCH_MAX_PATTERN).describe("Text to find in a line (plain text unless regex)"),
    regex: z.boolean().optional().describe("The pattern is a regular expression (RE2 syntax: no backreferences or lookaround)"),
    ignore_case: z.boolean().optional().describe("Letters match in either case"),
    context: z.number().int().min(0).max(SEARCH_MAX_CONTEXT).optional().describe("Lines shown before and after each match (default 2)"),
    limit: z.number().int().min(1).max(SEARCH_MAX_MATCHES).optional().describe(`Matches at most (default ${SEARCH_DEFAULT_MATCHES})`),
    from_line: z.number().int().min(1).optional().describe("Search from this line on (a cut answer says where to go on)"),
  }),
  wait: z.strictObject({
    path: z.string().describe("The log path of a running command (log://turn_N/sh/…)"),
    timeout_ms: z.number().int().min(1).max(600_000).optional().describe("How long to wait (default 30000)"),
  }),
  jobs: z.strictObject({}),
  write: z.strictObject({
    path: z.string().describe("The log path of a running command (log://turn_N/sh/…), or one of its channels"),
    input: z
      .string()
      .max(16 * 1024)
      .describe(
        "Text to type, with \n for Enter; named keys in angle brackets: <C-c>, <C-d>, <C-z>, <Enter>, <Tab>, <Esc>, <Up>, <Down>, <Left>, <Right>, <Backspace>. Empty: only read what is new",
      ),
    timeout_ms: z.number().int().min(0).max(60_000).optional().describe("How long to wait for the command's answer (default 2000)"),
  }),
  kill: z.strictObject({
    path: z.string().describe("The log path of a running command, or one of its channels"),
    signal: ControlSignal.optional().describe("TERM (default), INT, HUP, QUIT, USR1, USR2, WINCH or KILL"),
  }),
  done: z.strictObject({ summary: z.string().describe("What was done, for the person") }),
} as const;

export type ToolName = keyof typeof ToolArgs;

const DESCRIPTIONS: Record<ToolName, string> = {
  sh: "Propose a shell command. A person accepts or rejects it; once accepted it runs and you get its status, exit code and output (or the output so far if it is still running). Sandboxed (the default where the runner has a sandbox), it cannot write the project's .git: git commands that read work, a commit or a checkout fails, and a repository it makes (git init, git clone) is unknown to git once it ends, its HEAD renamed HEAD.spool-untrusted (leave those to the person).",
  env: "Propose a read-only command to inspect the environment; same result as sh. The only command tool in ask mode.",
  get: "Read an entry (a command's output channel or log): the last lines (tail) or a slice (line, limit), as clean text.",
  grep: "Search a command's stored output; no approval needed (nothing runs). Every line holding the pattern, with its line number and the lines around it, in all the output Spool kept, including the part left out of what you were shown. Use it instead of a new command to find errors, failures or a name in a long output.",
  wait: "Wait for a running command to finish, up to timeout_ms; returns the same result as sh.",
  jobs: "List this run's commands that are still running: path, command, how long, output sizes.",
  write:
    "Type into a running command's input (answer a prompt, drive a REPL, press C-c or C-d) and read what it printed since your last look; empty input only reads what is new.",
  kill: "Send a signal to a running command (TERM by default; KILL if it ignores that) and get its result.",
  done: "Finish this task with a summary for the person.",
};

/**
 * What an `ask` loop may call: read-only tools only. No `sh`, and nothing that reaches a command already
 * running (`write` types into it, `kill` signals it), even one an earlier `act` loop of the run left going.
 */
const ASK_TOOLS: ReadonlySet<ToolName> = new Set(["env", "get", "grep", "wait", "jobs", "done"]);

/** The tools a loop in `mode` is offered (and may call). */
export function toolNames(mode: "ask" | "act", modelInput: "accepted" | "off" = "accepted"): ToolName[] {
  const control: ToolName[] = modelInput === "off" ? ["jobs"] : ["jobs", "write", "kill"];
  const names: ToolName[] = ["sh", "env", "get", "grep", "wait", ...control, "done"];
  return mode === "ask" ? names.filter((name) => ASK_TOOLS.has(name)) : names;
}

export function toolSpecs(mode: "ask" | "act", modelInput: "accepted" | "off" = "accepted"): ToolSpec[] {
  return toolNames(mode, modelInput).map((name) => {
    const { $schema: _ignored, ...parameters } = z.toJSONSchema(ToolArgs[name]) as Record<string, unknown>;
    return { type: "function", function: { name, description: DESCRIPTIONS[name], parameters } };
  });
}

export type ToolOutcome =
  | { kind: "result"; content: string; path?: string; failed?: boolean }
  | { kind: "waiting"; path: string }
  | { kind: "done"; content: string; summary: string }
  /** Not proposed: the run is at its budget (the loop pauses; the call is made once a person raised it). */
  | { kind: "paused"; reached: NonNullable<Awaited<ReturnType<Core["budgets"]["reached"]>>> };

/** Waits up to `ms` for a producer's channels to finish (on their end events: core.entries.settled). */
function settle(core: Core, log: EntryRow, ms: number, signal: AbortSignal): Promise<EntryRow[]> {
  return core.entries.settled(log.id, ms, signal);
}

/** A producer's result as the model reads it: status (in words), exit code, then each channel's model view. */
export async function producerResult(ctx: Pick<ToolContext, "core" | "budgetTokens">, log: EntryRow, channels: EntryRow[]): Promise<string> {
  if (log.status === ENTRY.rejected || log.status === ENTRY.proposed) {
    const reason = log.status === ENTRY.rejected ? `\nreason: ${producerFromRow(log).reason ?? "rejected"}` : "";
    return `status: ${statusText(log.status)}\nlog: ${log.path}${reason}`;
  }
  const status = channels.some((c) => c.status === ENTRY.streaming) ? ENTRY.streaming : (channels[0]?.status ?? log.status);
  const first = channels[0] ? channelFromRow(channels[0]) : null;
  const lines = [`status: ${statusText(status)}${status === ENTRY.streaming ? " (use wait or get for more)" : ""}`, `log: ${log.path}`];
  if (first?.exitCode != null) lines.push(`exit code: ${first.exitCode}`);
  if (first?.signal) lines.push(`signal: ${first.signal}`);
  if (first?.reason) lines.push(`reason: ${first.reason}`);
  // What was typed and what it printed, in the order it happened, when that fits the budget (else each channel alone).
  const typed = channels.some((c) => c.channel === 0 && c.bytes > 0);
  const allBytes = channels.reduce((sum, c) => sum + c.bytes, 0);
  if (typed && allBytes <= ctx.budgetTokens * 4) {
    const input = new Set(channels.filter((c) => c.channel === 0).map((c) => c.id));
    const read = await ctx.core.entries.readInOrder(
      channels.map((c) => c.id),
      allBytes,
    );
    const text = await renderTerminalText(transcript(read.chunks.map((c) => ({ input: input.has(c.entryId), data: c.data }))));
    lines.push(`--- output and input, in order (lines typed to it start with "${TYPED_LABEL.trim()}"; ${channels.map((c) => c.path).join(", ")}) ---`);
    lines.push(text.replace(/\n$/, ""));
    return lines.join("\n");
  }
  // Share the budget between the channels that have output.
  const withOutput = channels.filter((c) => c.bytes > 0);
  const share = Math.max(100, Math.floor(ctx.budgetTokens / Math.max(1, withOutput.length)));
  for (const channel of channels) {
    const { name } = channelFromRow(channel);
    if (channel.bytes === 0) {
      lines.push(`--- ${name} (${channel.path}): empty`);
      continue;
    }
    const view = await channelModelView(ctx.core.entries.readLines, channel, share, { failurePatterns: ctx.core.config.agent.failurePatterns });
    const count = lineCount(channel);
    lines.push(`--- ${name} (${channel.path}, ${count} line${count === 1 ? "" : "s"}, ${channel.bytes} byte${channel.bytes === 1 ? "" : "s"}) ---`);
    lines.push(view.text.replace(/\n$/, ""));
  }
  return lines.join("\n");
}

function argsOf<N extends ToolName>(name: N, call: ToolCall): z.output<(typeof ToolArgs)[N]> | string {
  let raw: unknown;
  try {
    raw = JSON.parse(call.function.arguments || "{}");
  } catch {
    return `error: the arguments of ${name} are not valid JSON`;
  }
  const parsed = ToolArgs[name].safeParse(raw);
  if (!parsed.success)
    return `error: invalid arguments for ${name}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`;
  return parsed.data as z.output<(typeof ToolArgs)[N]>;
}

/** Runs one tool call; sh and env stop at "waiting" until a person resolves the proposal. */
export async function runTool(ctx: ToolContext, call: ToolCall): Promise<ToolOutcome> {
  const name = call.function.name as ToolName;
  if (!(name in ToolArgs)) return { kind: "result", content: `error: unknown tool "${call.function.name}"` };
  // A tool the loop was not offered is refused before its arguments are read: an ask loop changes nothing.
  if (ctx.mode === "ask" && !ASK_TOOLS.has(name)) {
    const instead = name === "sh" ? "use env for read-only commands" : "it reaches a running command, and ask mode only reads";
    return { kind: "result", content: `error: ${name} is not available in ask mode; ${instead}`, failed: true };
  }
  const args = argsOf(name, call);
  if (typeof args === "string") return { kind: "result", content: args };
  switch (name) {
    case "sh":
    case "env":
      return runCommand(ctx, call, name, args as { command: string; cwd?: string });
    case "get":
      return { kind: "result", content: await getEntry(ctx, args as z.output<typeof ToolArgs.get>) };
    case "grep":
      return { kind: "result", content: await grepTool(ctx, args as z.output<typeof ToolArgs.grep>) };
    case "wait": {
      const { path, timeout_ms } = args as z.output<typeof ToolArgs.wait>;
      const log = await ctx.core.entries.find(ctx.run.id, path);
      if (log?.scheme !== "log") return { kind: "result", content: `error: no command log "${path}" in this run` };
      const channels = await settle(ctx.core, log, timeout_ms ?? 30_000, ctx.signal);
      await markSeen(ctx.core, log, channels);
      return { kind: "result", content: await producerResult(ctx, log, channels), path };
    }
    case "jobs":
      return { kind: "result", content: await listJobs(ctx) };
    case "write":
      return writeTool(ctx, args as z.output<typeof ToolArgs.write>);
    case "kill":
      return killTool(ctx, args as z.output<typeof ToolArgs.kill>);
    case "done": {
      const { summary } = args as z.output<typeof ToolArgs.done>;
      return { kind: "done", content: "ok", summary };
    }
  }
}

async function runCommand(
  ctx: ToolContext,
  call: ToolCall,
  tool: "sh" | "env",
  args: { command: string; cwd?: string; tty?: boolean; background?: boolean; allow_hosts?: string[] },
): Promise<ToolOutcome> {
  let log = await ctx.core.entries.findLogBy(ctx.run.id, "toolCallId", call.id);
  if (!log) {
    // A command counts toward the run's budget from its proposal: none is proposed past it.
    const reached = await ctx.core.budgets.reached(ctx.run, ctx.project.name, "proposal");
    if (reached) return { kind: "paused", reached };
    ctx.announce("running", null);
    try {
      log = await ctx.core.lifecycle.propose(ctx.project, ctx.run, {
        tool,
        command: args.command,
        ...(args.cwd ? { cwd: args.cwd } : {}),
        ...(args.tty ? { tty: MODEL_TTY } : {}),
        ...(args.background ? { background: true } : {}),
        ...(args.allow_hosts?.length ? { allow_hosts: args.allow_hosts } : {}),
        proposedBy: `model (${ctx.run.model})`,
        traceparent: ctx.traceparent,
        extra: { toolCallId: call.id, loop: ctx.loopSeq },
      });
    } catch (error) {
      return { kind: "result", content: `error: ${error instanceof Error ? error.message : String(error)}`, failed: true };
    }
    // A rule of the run may have accepted it already; otherwise it waits for a person.
    if (log.status === ENTRY.proposed) {
      ctx.announce("waiting", log.path);
      return { kind: "waiting", path: log.path };
    }
  }
  if (log.status === ENTRY.proposed) return { kind: "waiting", path: log.path };
  // Background work is not waited for: the turn goes on at once with its path.
  const { background } = producerFromRow(log);
  const channels = log.status === ENTRY.done ? await settle(ctx.core, log, background ? 0 : ctx.yieldMs, ctx.signal) : [];
  const fresh = (await ctx.core.entries.find(ctx.run.id, log.path)) ?? log;
  const failed = fresh.status === ENTRY.rejected || channels.some((c) => c.status === ENTRY.cancelled || c.status === ENTRY.failed);
  await markSeen(ctx.core, fresh, channels);
  const result = await producerResult(ctx, fresh, channels);
  const note =
    background && channels.some((c) => c.status === ENTRY.streaming)
      ? "running in the background: jobs lists it; get, wait, write and kill reach it by its log path\n"
      : "";
  return { kind: "result", content: `${note}${result}`, path: log.path, failed };
}

/** `write`: types into a running command of this run and answers with what it printed since the model last looked. */
async function writeTool(ctx: ToolContext, args: z.output<typeof ToolArgs.write>): Promise<ToolOutcome> {
  const refusal = inputRefusal(ctx.core);
  if (refusal) return { kind: "result", content: refusal, failed: true };
  const log = await producerOf(ctx, args.path);
  if (!log || log.status !== ENTRY.done) return { kind: "result", content: `error: no accepted command "${args.path}" in this run`, failed: true };
  let channels = await ctx.core.entries.channels(log.id);
  const open = channels.some((c) => c.status === ENTRY.streaming);
  const parts = writeParts(args.input, producerFromRow(log).tty !== null);
  if (parts.length > 0 && !open) {
    return {
      kind: "result",
      content: `error: the command has finished; nothing was sent\n${statusLines(log, channels).join("\n")}`,
      path: log.path,
      failed: true,
    };
  }
  const error = await sendParts(ctx, log, parts);
  if (error) return { kind: "result", content: error, path: log.path, failed: true };
  if (open) channels = await awaitAnswer(ctx.core, log, args.timeout_ms ?? 2000, ctx.signal, channels);
  const fresh = (await ctx.core.entries.findById(log.id)) ?? log;
  const sent = parts.length > 0 ? [`sent: ${describeParts(parts)}`] : [];
  return { kind: "result", content: [...statusLines(fresh, channels), ...sent, await newOutput(ctx, fresh, channels)].join("\n"), path: log.path };
}

/** `kill`: sends a signal to a running command of this run; answers with how it ended (or that it still runs). */
async function killTool(ctx: ToolContext, args: z.output<typeof ToolArgs.kill>): Promise<ToolOutcome> {
  const refusal = inputRefusal(ctx.core);
  if (refusal) return { kind: "result", content: refusal, failed: true };
  const log = await producerOf(ctx, args.path);
  if (!log || log.status !== ENTRY.done) return { kind: "result", content: `error: no accepted command "${args.path}" in this run`, failed: true };
  const signal = args.signal ?? "TERM";
  const before = await ctx.core.entries.channels(log.id);
  if (!before.some((c) => c.status === ENTRY.streaming)) {
    return { kind: "result", content: [`it had already finished; nothing was sent`, ...statusLines(log, before)].join("\n"), path: log.path };
  }
  const error = await sendParts(ctx, log, [{ kind: "signal", signal }]);
  if (error) return { kind: "result", content: error, path: log.path, failed: true };
  const channels = await settle(ctx.core, log, ctx.killWaitMs, ctx.signal);
  const fresh = (await ctx.core.entries.findById(log.id)) ?? log;
  const still = channels.some((c) => c.status === ENTRY.streaming) ? [`it is still running after SIG${signal}; kill it with signal KILL if it must stop`] : [];
  return {
    kind: "result",
    content: [`sent SIG${signal}`, ...statusLines(fresh, channels), ...still, await newOutput(ctx, fresh, channels)].join("\n"),
    path: log.path,
  };
}

async function getEntry(ctx: ToolContext, args: z.output<typeof ToolArgs.get>): Promise<string> {
  const entry = await ctx.core.entries.find(ctx.run.id, args.path);
  if (!entry) return `error: no entry "${args.path}" in this run`;
  const budget = ctx.budgetTokens * 4;
  if (!entry.streamed) return (await renderTerminalText(entry.body, renderOptionsFor(entry))).slice(0, budget);
  const total = lineCount(entry);
  const start = args.tail !== undefined ? Math.max(0, total - args.tail) : (args.line ?? 1) - 1;
  const count = args.limit ?? args.tail ?? 200;
  // Noisy output shrinks a lot once rendered: read up to 8 raw bytes for each character the model may see.
  const slice = await ctx.core.entries.readLines(entry.id, start, count, budget * 8);
  let text = await renderTerminalText(slice.data.toString("utf8"), renderOptionsFor(entry));
  if (text.length > budget) text = `${text.slice(0, budget)}\n[… cut at the budget; ask for fewer lines]`;
  return `${entry.path}: lines ${start + 1}-${start + slice.lines} of ${total} (${statusText(entry.status)})\n${text}`;
}
