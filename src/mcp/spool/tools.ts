import type { CallToolResult } from "@modelcontextprotocol/server";
import { z } from "zod";
import { ConnectionClosedError, SpoolRpcError } from "../../client/spool-client.js";
import { escapeControl } from "../../protocol/proposal-facts.js";
import { runState } from "../../protocol/shown-state.js";
import { producerOf } from "../../protocol/views.js";
import type { McpExtras } from "./extras.js";
import { readOutput } from "./output.js";
import { runCommand } from "./run-command.js";
import { type Extra, LIST_LIMIT, type Session, type SpoolSide } from "./spool-side.js";
import { failure, KEY_NAMES, keyBytes, STATUS, statusWord, ToolFailure, text } from "./text.js";
import {
  type ArgsOf,
  CancelArgs,
  ListCommandsArgs,
  ReadOutputArgs,
  RunCommandArgs,
  SendInputArgs,
  SignalArgs,
  TOOL_DESCRIPTIONS,
  TOOL_TRAITS,
  type ToolName,
} from "./tool-schemas.js";

/*
 * The MCP tools of spool mcp: run_command (src/mcp/spool/run-command.ts), read_output (src/mcp/spool/output.ts), and here
 * the ones that reach a command by its path (send_input, signal, cancel) and list_commands.
 */

/** A tool: its argument shape, and what a call does on the Spool side. */
interface ToolEntry {
  shape: z.ZodRawShape;
  run(side: SpoolSide, args: never, extra: Extra, session: Session): Promise<CallToolResult>;
}

const entry = <A extends z.ZodRawShape>(shape: A, run: (side: SpoolSide, args: ArgsOf<A>, extra: Extra, session: Session) => Promise<CallToolResult>) =>
  ({ shape, run }) as ToolEntry;

/** Spool's tools, in the order tools/list shows them: one table for both revisions (src/mcp/sessions/, src/mcp/stateless/). */
const TOOLS: Record<ToolName, ToolEntry> = {
  run_command: entry(RunCommandArgs, (side, a, e, s) => runCommand(side, a, e, s)),
  read_output: entry(ReadOutputArgs, (side, a, _e, s) => readOutput(side, a, s)),
  send_input: entry(SendInputArgs, (side, a, _e, s) => sendInput(side, a, s)),
  signal: entry(SignalArgs, (side, a, _e, s) => signal(side, a, s)),
  cancel: entry(CancelArgs, (side, a, _e, s) => cancel(side, a, s)),
  list_commands: entry(ListCommandsArgs, (_side, a, _e, s) => list(a, s)),
};

/** Whether `name` is one of Spool's tools, or of `extras` (an embedder's: extras.ts). */
export const isTool = (name: string, extras?: McpExtras): boolean => Object.hasOwn(TOOLS, name) || (!!extras?.tools && Object.hasOwn(extras.tools, name));

/** One tool as tools/list shows it: its arguments' JSON Schema (draft-07, the input's), title and annotations. */
export interface ListedTool {
  name: string;
  title: string;
  description: string;
  inputSchema: Record<string, unknown>;
  annotations: Record<string, unknown>;
  execution?: { taskSupport: "optional" | "forbidden" };
}

let listed: ListedTool[] | null = null;

/** A tool's arguments as JSON Schema (draft-07, the input's: as the SDK's McpServer gave them). */
const schemaOf = (shape: z.ZodRawShape) => z.toJSONSchema(z.object(shape), { target: "draft-7", io: "input" }) as Record<string, unknown>;

/**
 * The tools as tools/list shows them (computed once; tools never change). `tasks` (2025-11-25): each says whether
 * it may run as a task, which only run_command may; 2026-07-28's tasks are an extension the list does not name.
 */
export function listTools(tasks: boolean, extras?: McpExtras): { tools: ListedTool[] } {
  listed ??= (Object.keys(TOOLS) as ToolName[]).map((name) => {
    const { title, annotations } = TOOL_TRAITS[name];
    return { name, title, description: TOOL_DESCRIPTIONS[name], inputSchema: schemaOf(TOOLS[name].shape), annotations: { title, ...annotations } };
  });
  const others = Object.entries(extras?.tools ?? {}).map(([name, tool]) => ({
    name,
    ...(tool.title !== undefined ? { title: tool.title } : {}),
    description: tool.description,
    inputSchema: schemaOf(tool.shape),
    annotations: {},
  })) as ListedTool[];
  const all = others.length ? [...listed, ...others] : listed;
  if (!tasks) return { tools: all };
  return { tools: all.map((tool) => ({ ...tool, execution: { taskSupport: tool.name === "run_command" ? "optional" : "forbidden" } })) };
}

/** Arguments a tool call's message could not be read as: the zod issues, each with where it is. */
function issuesText(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      if (!i.path.length) return i.message;
      const where = i.path.reduce<string>((acc, seg, n) => (n === 0 ? String(seg) : typeof seg === "number" ? `${acc}[${seg}]` : `${acc}.${String(seg)}`), "");
      return `${i.message} at ${where}`;
    })
    .join("\n");
}

/**
 * A call of one of Spool's tools, or of its side's extras (the caller checked the name with isTool): its arguments
 * checked against its shape, then run on the Spool side. A refusal, bad arguments or any failure is an error
 * result the model reads.
 */
export async function callTool(side: SpoolSide, name: string, args: Record<string, unknown> | undefined, extra: Extra): Promise<CallToolResult> {
  const own = Object.hasOwn(TOOLS, name) ? TOOLS[name as ToolName] : null;
  const other = own ? null : side.options.extras?.tools?.[name];
  const shape = own?.shape ?? other?.shape;
  if (!shape) return failure(`Unknown tool: ${name}`);
  const parsed = await z.object(shape).safeParseAsync(args ?? {});
  if (!parsed.success) return failure(`Input validation error: Invalid arguments for tool ${name}: ${issuesText(parsed.error)}`);
  const work = (async () => {
    try {
      if (!own) return await other!.run(parsed.data, extra);
      return await own.run(side, parsed.data as never, extra, await side.ready());
    } catch (error) {
      if (error instanceof ToolFailure) return failure(error.message);
      if (error instanceof SpoolRpcError) return failure(`Spool refused it: ${error.message}`);
      if (error instanceof ConnectionClosedError) return failure(`The connection to the Spool server closed: ${error.message}`);
      return failure(error instanceof Error ? error.message : String(error));
    }
  })();
  side.inFlight.add(work);
  void work.finally(() => side.inFlight.delete(work)).catch(() => undefined);
  return work;
}

async function sendInput(side: SpoolSide, args: ArgsOf<typeof SendInputArgs>, session: Session): Promise<CallToolResult> {
  if (args.text === undefined && (args.keys ?? []).length === 0 && !args.eof) throw new ToolFailure("send_input needs text, keys or eof");
  let bytes = args.text ?? "";
  for (const key of args.keys ?? []) {
    const b = keyBytes(key);
    if (b === null) throw new ToolFailure(`unknown key "${key}"; keys are ${KEY_NAMES}`);
    bytes += b;
  }
  const { run, path } = await side.target(session, args.path);
  const done: string[] = [];
  if (bytes !== "") {
    const sent = await session.client.input(run, path, bytes);
    done.push(`sent ${Buffer.byteLength(bytes)} bytes (input #${sent.seq})`);
  }
  if (args.eof) {
    await session.client.eof(run, path);
    done.push("ended its input");
  }
  return text(`${done.join("; ")} to ${path}; read_output shows what it printed`);
}

async function signal(side: SpoolSide, args: ArgsOf<typeof SignalArgs>, session: Session): Promise<CallToolResult> {
  const { run, path } = await side.target(session, args.path);
  await session.client.signal(run, path, args.signal);
  return text(`sent SIG${args.signal} to ${path}; list_commands or read_output show whether it ended`);
}

async function cancel(side: SpoolSide, args: ArgsOf<typeof CancelArgs>, session: Session): Promise<CallToolResult> {
  const { run, path, log } = await side.target(session, args.path);
  const reason = args.reason ?? `cancelled by ${session.who}`;
  if (log.status === STATUS.proposed) {
    await session.client.call("run/resolve", { run, path, decision: "reject", reason });
    return text(`withdrew the proposal ${path}; it will not run`);
  }
  if (log.status === STATUS.rejected) return text(`${path} was rejected; nothing runs`);
  const reply = await session.client.call("stream/cancel", { run, path, reason });
  return text(reply.changed ? `cancelled ${path}; its process is being killed` : `${path} had already ended (${statusWord(reply.status)})`);
}

async function list(args: ArgsOf<typeof ListCommandsArgs>, session: Session): Promise<CallToolResult> {
  if (session.run === null) return text("this connection has run no command yet");
  const { entries } = await session.client.call("entry/list", { run: session.run, pattern: "log://*", limit: LIST_LIMIT });
  const rows: string[] = [];
  for (const e of entries) {
    const p = producerOf(e);
    const state =
      e.status === STATUS.proposed
        ? "pending"
        : e.status === STATUS.rejected
          ? "rejected"
          : p.endStatus !== null
            ? p.endStatus === STATUS.done
              ? "done"
              : statusWord(p.endStatus)
            : "running";
    const group = state === "pending" ? "pending" : state === "running" ? "running" : "finished";
    if (args.state && args.state !== "all" && args.state !== group) continue;
    const exit = p.exitCode !== null ? ` exit ${p.exitCode}` : "";
    rows.push(`${e.path}  ${state}${exit}  $ ${escapeControl(p.command)}`);
  }
  // The run's state in the words every client shows (runState): waiting while a command of it waits for a decision.
  const { run } = await session.client.call("run/get", { run: session.run });
  const head = `run ${session.run} (${runState(run)})`;
  return text(rows.length ? `${head}:\n${rows.join("\n")}` : `${head}: no commands${args.state && args.state !== "all" ? ` (${args.state})` : ""}`);
}
