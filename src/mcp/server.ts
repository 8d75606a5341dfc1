import {
  type ClientCapabilities,
  MissingRequiredClientCapabilityError,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  type ServerCapabilities,
  type ServerContext,
} from "@modelcontextprotocol/server";
import { z } from "zod";
import { SpoolRpcError } from "../client/spool-client.js";
import { mayDecide } from "./caller.js";
import { type Connection, capabilitiesOf, callTool as modernCall, type ServerDeps } from "./modern-call.js";
import { cancelTask, type TaskCaller, taskView, updateTask } from "./modern-tasks.js";
import { declaresTasks, elicitsForm, TASKS_EXTENSION } from "./modern-wire.js";
import { report } from "./output.js";
import { listResources, readResource, registerResources, resourceTemplates } from "./resources.js";
import { type BridgeLog, type McpBridgeOptions, SpoolSide } from "./spool-side.js";
import { registerToolCalls, SpoolTaskStore, taskRuns } from "./tasks.js";
import { message } from "./text.js";
import { listTools } from "./tools.js";

/*
 * Spool's MCP servers, one factory for each revision, both the v2 SDK's Server with Spool's handlers on its public
 * setRequestHandler, both answering from the same table of tools (tools.ts) and the same resource functions
 * (resources.ts):
 * - `spoolServer`, 2026-07-28's, for one request (HTTP: createMcpHandler's factory, modern.ts) or one stdio
 *   connection (serveStdio's, stdio.ts). The SDK checks the envelope and headers, answers server/discover, stamps
 *   resultType, cache fields and the server's identity; run_command is an elicited decision or a task
 *   (modern-call.ts, modern-tasks.ts), on the caller's kept Spool connection.
 * - `sessionServer`, a 2025-11-25 session's (McpBridge, bridge.ts: over stdio or one Streamable HTTP session):
 *   initialize, progress and elicitation over the session, the tasks of 2025-11-25 (tasks.ts) and resource
 *   subscriptions.
 */

/** What the server tells the client's model about itself (initialize, server/discover). */
export const INSTRUCTIONS =
  "Spool runs your shell commands after a person approves them (web view, spool approve, an editor). run_command waits for the decision and for the command; use background: true for servers and watchers, then read_output, send_input, signal and cancel by path.";

const instructions = (where: string | undefined) => (where ? `${INSTRUCTIONS} ${where}` : INSTRUCTIONS);

/** A 2025-11-25 session's server and the Spool side its handlers work on; `resources.close` stops its subscriptions. */
export function sessionServer(options: McpBridgeOptions): { server: Server; side: SpoolSide; resources: { close(): Promise<void> } } {
  const server = new Server(
    { name: "spool", title: "Spool", version: options.version },
    {
      // Tasks (2025-11-25): run_command may run as one, and each task is a Spool producer (src/mcp/tasks.ts). The
      // capability is 2025-11-25's, which the v2 SDK's type (2026-07-28's) no longer names.
      capabilities: { tools: { listChanged: true }, logging: {}, tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } } as ServerCapabilities,
      instructions: instructions(options.where),
    },
  );
  const side = new SpoolSide(server, options);
  const store = new SpoolTaskStore({
    session: () => side.ready(),
    taskRuns: () => taskRuns(side),
    report: async (run, path, by) => report(await side.ready(), run, path, by),
  });
  registerToolCalls(side, store);
  return { server, side, resources: registerResources(side) };
}

/** The server's capabilities under 2026-07-28, as server/discover says them. */
const CAPABILITIES = {
  tools: {},
  resources: { listChanged: true, subscribe: true },
  extensions: { [TASKS_EXTENSION]: {} },
} as ServerCapabilities;

/** How long a client may keep what a list returned: tools never change; a run's resources do. */
const PUBLIC_HOUR = { ttlMs: 3_600_000, cacheScope: "public" } as const;
const CACHE_HINTS = { "tools/list": PUBLIC_HOUR, "server/discover": PUBLIC_HOUR, "resources/templates/list": { ttlMs: 0, cacheScope: "public" } } as const;
const PRIVATE_NOW = { ttlMs: 0, cacheScope: "private" } as const;

/** The tasks methods' params (the extension's; the SDK has no runtime for them). */
const TaskParams = z.looseObject({ taskId: z.string(), inputResponses: z.unknown().optional() });

/**
 * A Server answering 2026-07-28 requests on the caller's kept Spool connection (`connectionOf` a request's: HTTP
 * has one per handler, stdio one per client name); null serves only what needs none.
 */
export function spoolServer(deps: ServerDeps, connectionOf: ((ctx: ServerContext) => Connection) | null): Server {
  const server = new Server(
    { name: "spool", version: deps.version },
    { capabilities: CAPABILITIES, instructions: instructions(deps.where), cacheHints: CACHE_HINTS },
  );
  const guard = guarded(deps.log);
  const needs = (ctx: ServerContext): Connection => {
    if (!connectionOf) throw new ProtocolError(ProtocolErrorCode.InternalError, "this request needs a Spool connection");
    return connectionOf(ctx);
  };
  const tasks = (ctx: ServerContext, method: string): TaskCaller => {
    const capabilities = capabilitiesOf(ctx);
    if (!declaresTasks(capabilities))
      throw new MissingRequiredClientCapabilityError(
        { requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } as ClientCapabilities },
        `${method} is the tasks extension's: declare ${TASKS_EXTENSION} in clientCapabilities.extensions`,
      );
    return { mayDecide: mayDecide(needs(ctx).caller), elicits: elicitsForm(capabilities) };
  };
  server.setRequestHandler("tools/list", () => listTools(false, deps.extras) as never);
  server.setRequestHandler("resources/templates/list", () => resourceTemplates(deps.extras) as never);
  server.setRequestHandler(
    "resources/list",
    guard("resources/list", async (_request, ctx) => ({ ...(await listResources(needs(ctx).side)), ...PRIVATE_NOW })),
  );
  server.setRequestHandler(
    "resources/read",
    guard("resources/read", async (request, ctx) => {
      const uri = String(request.params.uri);
      try {
        return { ...(await readResource(needs(ctx).side, uri)), ...PRIVATE_NOW };
      } catch (error) {
        // 2026-07-28: a resource not found is Invalid Params.
        const code = (error as { code?: unknown }).code;
        if (code === ProtocolErrorCode.ResourceNotFound || code === ProtocolErrorCode.InvalidParams)
          throw new ProtocolError(ProtocolErrorCode.InvalidParams, message(error), { uri });
        throw error;
      }
    }),
  );
  server.setRequestHandler(
    "tools/call",
    guard("tools/call", (request, ctx) => modernCall(deps, needs(ctx), request.params as Record<string, unknown>, ctx)),
  );
  server.setRequestHandler(
    "tasks/get",
    { params: TaskParams },
    guard("tasks/get", async (params, ctx) => {
      const caller = tasks(ctx, "tasks/get");
      return taskView(await needs(ctx).side.ready(), params.taskId, caller);
    }),
  );
  server.setRequestHandler(
    "tasks/update",
    { params: TaskParams },
    guard("tasks/update", async (params, ctx) => {
      const caller = tasks(ctx, "tasks/update");
      await updateTask(await needs(ctx).side.ready(), params.taskId, ctx.mcpReq.inputResponses ?? params.inputResponses, caller);
      return {};
    }),
  );
  server.setRequestHandler(
    "tasks/cancel",
    { params: TaskParams },
    guard("tasks/cancel", async (params, ctx) => {
      tasks(ctx, "tasks/cancel");
      await cancelTask(await needs(ctx).side.ready(), params.taskId);
      return {};
    }),
  );
  return server;
}

/**
 * A handler whose Spool refusals are Invalid Params ("Spool refused it"), and whose unexpected failures are logged
 * (the SDK answers them with their code, or Internal Error).
 */
function guarded(log: BridgeLog) {
  return <A extends unknown[], R>(method: string, handler: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<never> => {
      try {
        return (await handler(...args)) as never;
      } catch (error) {
        if (error instanceof SpoolRpcError) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Spool refused it: ${error.message}`);
        if (typeof (error as { code?: unknown })?.code !== "number")
          log.warn(`mcp: ${method} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        throw error;
      }
    };
}
