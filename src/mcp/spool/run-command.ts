import type { CallToolResult } from "@modelcontextprotocol/server";
import { SpoolRpcError, type StreamWatch } from "../../client/spool-client.js";
import { Traceparent } from "../../protocol/common.js";
import { awaitDecision } from "./decision.js";
import { report } from "./output.js";
import { HEARTBEAT_MS, Progress } from "./progress.js";
import { resourceUri } from "./resource-uri.js";
import type { Extra, Session, SpoolSide } from "./spool-side.js";
import { failure, message, text } from "./text.js";
import { type ArgsOf, DEFAULT_TTY, type RunCommandArgs } from "./tool-schemas.js";

/*
 * run_command: the command is proposed in this connection's run, waits for a decision, then runs while its
 * output streams as progress; the result is what a terminal finally shows. Run as a task, only the proposal
 * is made here (src/mcp/sessions/tasks.ts).
 */

/** Where a tool call can carry the caller's trace: its `_meta` (MCP's place), or over HTTP the request's headers. */
export interface TraceCarrier {
  _meta?: Record<string, unknown> | undefined;
  requestInfo?: { headers?: Record<string, string | string[] | undefined> } | undefined;
}

/**
 * The W3C traceparent an agent sent with the tool call, when it is one: `_meta.traceparent`, else (MCP over HTTP)
 * the request's `traceparent` header. The command's trace continues the call's.
 */
function traceparentOf(call: TraceCarrier, transport?: TraceCarrier): { traceparent?: string } {
  for (const value of [call._meta?.traceparent, transport?._meta?.traceparent, transport?.requestInfo?.headers?.traceparent])
    if (typeof value === "string" && Traceparent.safeParse(value).success) return { traceparent: value };
  return {};
}

/** Proposes a run_command's command in this connection's run: its run and log path, or the refusal as a tool error. */
export async function propose(
  side: SpoolSide,
  args: ArgsOf<typeof RunCommandArgs>,
  session: Session,
  call: TraceCarrier,
  transport?: TraceCarrier,
): Promise<{ run: string; path: string } | CallToolResult> {
  const run = await side.runOf(session);
  const tty = args.tty === true ? DEFAULT_TTY : args.tty === false || args.tty === undefined ? undefined : args.tty;
  try {
    const { path } = await session.client.call("proposal/create", {
      run,
      tool: side.options.mode === "ask" ? "env" : "sh",
      command: args.command,
      ...(args.cwd !== undefined ? { cwd: args.cwd } : {}),
      ...(args.env !== undefined ? { env: args.env } : {}),
      ...(args.timeout_ms !== undefined ? { timeout_ms: args.timeout_ms } : {}),
      ...(tty ? { tty } : {}),
      ...(args.background ? { background: true } : {}),
      ...(args.allow_hosts?.length ? { allow_hosts: args.allow_hosts } : {}),
      ...((args.runner ?? side.options.runner) ? { runner: args.runner ?? side.options.runner } : {}),
      ...traceparentOf(call, transport),
    });
    return { run, path };
  } catch (error) {
    if (error instanceof SpoolRpcError) return failure(`Spool refused the command: ${error.message}`);
    throw error;
  }
}

export async function runCommand(side: SpoolSide, args: ArgsOf<typeof RunCommandArgs>, extra: Extra, session: Session): Promise<CallToolResult> {
  const progress = new Progress(extra);
  const proposed = await propose(side, args, session, extra, extra);
  if ("content" in proposed) return proposed;
  return follow(side, args, extra, session, proposed, progress);
}

/**
 * A proposed run_command from there on: waits for the decision, then (unless in the background) for the command,
 * with its output as progress; the result is the one a synchronous call gives.
 */
export async function follow(
  side: SpoolSide,
  args: ArgsOf<typeof RunCommandArgs>,
  extra: Extra,
  session: Session,
  { run, path }: { run: string; path: string },
  progress = new Progress(extra),
): Promise<CallToolResult> {
  const decision = await awaitDecision(side, session, path, extra, progress);
  const uri = resourceUri(run, path);
  if (decision === null) return failure(`Cancelled before a decision; the proposal ${path} was withdrawn. The command did not run.`);
  if (decision.decision === "reject") {
    return failure(
      `Rejected by ${decision.resolvedBy}${decision.reason ? `: ${decision.reason}` : ""}. The command did not run.\n$ ${args.command}\n(${path})`,
    );
  }
  const by = `accepted by ${decision.resolvedBy}${decision.runner ? `, runs on ${decision.runner}` : ""}`;
  if (args.background) {
    progress.say(`${by}; running in the background`);
    return text(
      `Started in the background (${by}).\npath: ${path}\nresource: ${uri}\nread_output, send_input, signal and cancel reach it by this path; list_commands shows whether it still runs.`,
    );
  }
  progress.say(`${by}; running`);
  // One decoder per channel: a character split between two chunks of one channel is decoded whole.
  const decoders = new Map<number, TextDecoder>();
  let watch: StreamWatch | null = null;
  const onAbort = () => {
    if (side.closing) return void stop(side, session, path, `the MCP client ${session.who} closed the connection`);
    void stop(side, session, path, `cancelled by ${session.who} (MCP notifications/cancelled)`);
  };
  extra.signal.addEventListener("abort", onAbort, { once: true });
  const heartbeat = setInterval(() => progress.say("still running"), HEARTBEAT_MS);
  try {
    watch = await session.client.watch({ run, path }, (chunk) => {
      if (chunk.channel <= 0) return;
      let decoder = decoders.get(chunk.channel);
      if (!decoder) decoders.set(chunk.channel, (decoder = new TextDecoder()));
      progress.output(decoder.decode(chunk.data, { stream: true }));
    });
    if (extra.signal.aborted) onAbort();
    await watch.ended;
  } finally {
    clearInterval(heartbeat);
    extra.signal.removeEventListener("abort", onAbort);
    await watch?.close().catch(() => undefined);
  }
  progress.flush();
  return report(session, run, path, by);
}

/** Cancels a running producer (stream/cancel); one that already ended stays as it ended. */
async function stop(side: SpoolSide, session: Session, path: string, reason: string): Promise<void> {
  await session.client.call("stream/cancel", { run: session.run!, path, reason }).catch((error: unknown) => {
    side.log.warn(`cancelling ${path}: ${message(error)}`);
  });
}
