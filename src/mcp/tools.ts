import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { z } from "zod";
import { ConnectionClosedError, SpoolRpcError } from "../client/spool-client.js";
import { escapeControl } from "../protocol/proposal-facts.js";
import { runState } from "../protocol/shown-state.js";
import { producerOf } from "../protocol/views.js";
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
 * The MCP tools of spool mcp: run_command (src/mcp/run-command.ts), read_output (src/mcp/output.ts), and here
 * the ones that reach a command by its path (send_input, signal, cancel) and list_commands.
 */

/** Registers the tools on `mcp`: each call runs on the Spool side, and a refusal is an error result the model reads. */
export function registerTools(mcp: McpServer, side: SpoolSide): void {
  const tool = <A extends z.ZodRawShape>(
    name: ToolName,
    inputSchema: A,
    run: (args: z.infer<z.ZodObject<A>>, extra: Extra, session: Session) => Promise<CallToolResult>,
  ) => {
    const { title, annotations } = TOOL_TRAITS[name];
    mcp.registerTool(name, { title, description: TOOL_DESCRIPTIONS[name], inputSchema, annotations: { title, ...annotations } }, (async (
      args: z.infer<z.ZodObject<A>>,
      extra: Extra,
    ) => {
      const work = (async () => {
        try {
          return await run(args, extra, await side.ready());
        } catch (error) {
          if (error instanceof ToolFailure) return failure(error.message);
          if (error instanceof SpoolRpcError) return failure(`Spool refused it: ${error.message}`);
          if (error instanceof ConnectionClosedError) return failure(`The connection to the Spool server closed: ${error.message}`);
          throw error;
        }
      })();
      side.inFlight.add(work);
      void work.finally(() => side.inFlight.delete(work)).catch(() => undefined);
      return work;
    }) as never);
  };
  tool("run_command", RunCommandArgs, (a, e, s) => runCommand(side, a, e, s));
  tool("read_output", ReadOutputArgs, (a, _e, s) => readOutput(side, a, s));
  tool("send_input", SendInputArgs, (a, _e, s) => sendInput(side, a, s));
  tool("signal", SignalArgs, (a, _e, s) => signal(side, a, s));
  tool("cancel", CancelArgs, (a, _e, s) => cancel(side, a, s));
  tool("list_commands", ListCommandsArgs, (a, _e, s) => list(a, s));
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
