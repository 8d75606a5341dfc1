import type { CallToolResult } from "@modelcontextprotocol/server";
import { SpoolRpcError } from "../../client/spool-client.js";
import type { ResultOf } from "../../protocol/methods/index.js";
import { escapeControl } from "../../protocol/proposal-facts.js";
import { grepLines } from "../../protocol/search-lines.js";
import { producerOf } from "../../protocol/views.js";
import { parseResourceUri, resourceUri } from "./resource-uri.js";
import { channelsOf, isEntryPath, type LogEntry, type Session, type SpoolSide } from "./spool-side.js";
import { STATUS, statusWord, ToolFailure, text } from "./text.js";
import type { ArgsOf, ReadOutputArgs } from "./tool-schemas.js";

/*
 * A command's output as spool mcp returns it: the result of a finished command (run_command, a task's result,
 * resources/read), and read_output's reads, each channel as the model sees it or as raw text.
 */

/** Tokens of output a run_command result shows at most (head, tail and failure lines of a big output). */
const OUTPUT_BUDGET_TOKENS = 8000;

/** Which lines a read returned, and where the next read goes on when the read limit cut it (or it is part of a line). */
function linesRead(entry: LogEntry): string {
  const { line, lines } = entry.range;
  if (entry.part) {
    const { offset, bytes, end } = entry.part;
    return `part of line ${line} of ${entry.lines}: bytes ${offset}-${offset + bytes}${end ? ", its end" : `; the rest: line ${line}, offset ${offset + bytes}`}`;
  }
  const shown = `lines ${lines ? `${line}-${line + lines - 1}` : "none"} of ${entry.lines}`;
  return entry.truncated ? `${shown}; cut at the read limit, the rest from line ${line + lines}` : shown;
}

/** The result of a finished (or still running) command: how it ended and each channel as the model sees it. */
export async function report(session: Session, run: string, path: string, by: string | null): Promise<CallToolResult> {
  const log = await session.client.call("entry/get", { run, path, limit: 1 });
  const p = producerOf(log);
  const channels = channelsOf(log);
  const views: string[] = [];
  let state = STATUS.streaming as number;
  // The budget is shared among the channels that hold something (as the agent's own tools share theirs).
  const sizes = await Promise.all(channels.map((c) => session.client.call("entry/get", { run, path: c.path, tail: 1 })));
  const share = Math.max(200, Math.floor(OUTPUT_BUDGET_TOKENS / Math.max(1, sizes.filter((e) => e.bytes > 0).length)));
  for (const c of channels) {
    const view = await session.client.call("entry/get", { run, path: c.path, view: "model", budget: share });
    state = view.status;
    const name = c.channel === 1 ? (p.tty ? "output" : "stdout") : c.channel === 2 ? "stderr" : `channel ${c.channel}`;
    if (view.body.trim() === "" && c.channel !== 1) continue;
    // The note on what was left out names the model's get and grep tools; here the same arguments go to read_output.
    const body = view.body
      .replaceAll("read them with the get tool: ", "read them with read_output: ")
      .replaceAll("with the grep tool, no command and no approval needed: ", "with read_output and a pattern, no command needed: ");
    views.push(`--- ${name} (${c.path}, ${view.lines} lines) ---\n${body.trimEnd() || "(empty)"}`);
  }
  const outcome = p.endStatus ?? state;
  const facts: string[] = [];
  if (p.outcome === "completed") {
    facts.push(p.signal ? `killed by ${p.signal}` : `exit ${p.exitCode === null ? "unknown" : String(p.exitCode)}`);
  } else if (p.outcome === "cancelled" || p.outcome === "aborted") {
    facts.push(`${p.outcome}${p.reason ? `: ${p.reason}` : ""}`);
  } else facts.push(statusWord(outcome));
  if (p.durationMs !== null) facts.push(`${p.durationMs} ms`);
  if (by) facts.push(by);
  const header = [
    `$ ${escapeControl(p.command)}`,
    facts.join(" · "),
    `exit_code: ${JSON.stringify(p.exitCode)}`,
    `signal: ${JSON.stringify(p.signal)}`,
    `duration_ms: ${p.durationMs ?? "null"}`,
    `status: ${statusWord(outcome)}`,
    `path: ${path}`,
  ].join("\n");
  const result = text(`${header}\n${views.join("\n")}`);
  if (p.outcome === "cancelled" || p.outcome === "aborted") result.isError = true;
  return result;
}

/** read_output (and resources/read of a channel): a command's output, all of it within a budget or a slice. */
export async function readOutput(side: SpoolSide, args: ArgsOf<typeof ReadOutputArgs>, session: Session): Promise<CallToolResult> {
  const parsed = parseResourceUri(args.path);
  const path = parsed?.path ?? args.path;
  // Every read names an entry: a path that cannot be one is said so here, as a wrong one is (not the RPC's bare "Invalid params"),
  // and so is a spool:// URI that names no command (`spool://RUN/`), which is no path of this connection's either.
  if (!isEntryPath(args.path, parsed))
    throw new ToolFailure(
      `${JSON.stringify(args.path)} is not an output's path: read_output takes a path run_command gave (log://turn_1/sh/make, or a channel such as sh://turn_1/make_1), or spool://RUN/PATH for another run's`,
    );
  const run = parsed?.run ?? side.ownRun(session, args.path);
  if (args.pattern !== undefined) return searchOutput(session, run, path, args, parsed ? (p) => resourceUri(run, p) : (p) => p);
  if (args.regex !== undefined || args.ignore_case !== undefined || args.context !== undefined || args.from_line !== undefined)
    throw new ToolFailure("regex, ignore_case, context and from_line go with pattern");
  if (args.offset !== undefined && (args.line === undefined || args.limit !== undefined))
    throw new ToolFailure("offset goes with line, and reads the rest of that one line: give line and no limit");
  // Paths this result names, as read_output takes them back: another run's as spool://RUN/PATH.
  const address = (p: string) => (parsed ? resourceUri(run, p) : p);
  const slice = {
    ...(args.tail !== undefined ? { tail: args.tail } : {}),
    ...(args.line !== undefined ? { line: args.line } : {}),
    ...(args.limit !== undefined ? { limit: args.limit } : {}),
    ...(args.offset !== undefined ? { offset: args.offset } : {}),
    view: args.view ?? "model",
    // All of it as the model sees it: within a budget (head, tail, failure lines, a note on the rest).
    ...(args.view !== "raw" && args.tail === undefined && args.line === undefined && args.limit === undefined ? { budget: OUTPUT_BUDGET_TOKENS } : {}),
  } as const;
  if (!path.startsWith("log://")) {
    const entry = await get(session, run, path, slice);
    return text(`${address(path)} (${statusWord(entry.status)}, ${linesRead(entry)})\n${entry.body}`);
  }
  const { log } = await side.target(session, args.path);
  if (log.status === STATUS.proposed || log.status === STATUS.rejected) {
    return text(`${path}: ${statusWord(log.status)}; it has no output\n$ ${escapeControl(producerOf(log).command)}`);
  }
  const p = producerOf(log);
  const parts: string[] = [`$ ${escapeControl(p.command)}`];
  for (const c of channelsOf(log)) {
    const entry = await get(session, run, c.path, slice);
    if (entry.lines === 0 && c.channel !== 1) continue;
    parts.push(`--- ${address(c.path)} (${statusWord(entry.status)}, ${linesRead(entry)}) ---\n${entry.body.trimEnd()}`);
  }
  if (p.endStatus !== null) parts.push(`ended: ${statusWord(p.endStatus)}${p.exitCode !== null ? `, exit ${p.exitCode}` : ""}`);
  return text(parts.join("\n"));
}

async function get(
  session: Session,
  run: string,
  path: string,
  slice: { tail?: number; line?: number; limit?: number; offset?: number; view: "model" | "raw"; budget?: number },
): Promise<LogEntry> {
  try {
    return await session.client.call("entry/get", { run, path, ...slice });
  } catch (error) {
    if (error instanceof SpoolRpcError && error.errorCode === "NOT_FOUND") throw new ToolFailure(`no entry "${path}" in run ${run}`);
    throw error;
  }
}

/** read_output with a pattern: entry/search's matches as grep -n prints them, and where to go on. */
async function searchOutput(
  session: Session,
  run: string,
  path: string,
  args: ArgsOf<typeof ReadOutputArgs>,
  address: (path: string) => string,
): Promise<CallToolResult> {
  if (args.tail !== undefined || args.line !== undefined || args.limit !== undefined || args.offset !== undefined || args.view !== undefined)
    throw new ToolFailure("pattern searches the whole stored output: no tail, line, limit, offset or view");
  let found: ResultOf<"entry/search">;
  try {
    found = await session.client.call("entry/search", {
      run,
      path,
      pattern: args.pattern!,
      ...(args.regex ? { regex: true } : {}),
      ...(args.ignore_case ? { ignoreCase: true } : {}),
      ...(args.context ? { before: args.context, after: args.context } : {}),
      ...(args.from_line !== undefined ? { fromLine: args.from_line } : {}),
    });
  } catch (error) {
    if (error instanceof SpoolRpcError && error.errorCode === "NOT_FOUND") throw new ToolFailure(`no entry "${path}" in run ${run}`);
    if (error instanceof SpoolRpcError) throw new ToolFailure(error.message);
    throw error;
  }
  const several = new Set(found.matches.map((m) => m.path)).size > 1 || found.matches.some((m) => m.path !== path);
  const { lines } = grepLines(
    found.matches.map((m) => ({ ...m, text: escapeControl(m.text), before: m.before.map(escapeControl), after: m.after.map(escapeControl) })),
    { context: args.context !== undefined, suffix: (m) => (several ? `  (${address((m as (typeof found.matches)[number]).path)})` : "") },
  );
  const count = found.matches.length;
  const head = `${address(path)}: ${count === 0 ? "no" : count} line${count === 1 ? "" : "s"} matching ${JSON.stringify(args.pattern)} (${found.lines} lines searched, ${statusWord(found.status)})`;
  const more =
    found.nextLine !== undefined
      ? [`[… ${found.timedOut ? "the search ran out of time" : "more may follow"}: read_output again with from_line ${found.nextLine} …]`]
      : [];
  return text([head, ...lines, ...more].join("\n"));
}
