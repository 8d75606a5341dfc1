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
import { SpoolRpcError } from "../../client/spool-client.js";
import { mayDecide } from "../spool/caller.js";
import { instructions } from "../spool/instructions.js";
import { listResources, readResource, resourceTemplates } from "../spool/resources.js";
import type { BridgeLog } from "../spool/spool-side.js";
import { message } from "../spool/text.js";
import { listTools } from "../spool/tools.js";
import { type Connection, callTool, capabilitiesOf, type ServerDeps } from "./call.js";
import { cancelTask, type TaskCaller, taskView, updateTask } from "./tasks.js";
import { declaresTasks, elicitsForm, TASKS_EXTENSION } from "./wire.js";

/*
 * The server of MCP 2026-07-28, the v2 SDK's Server with Spool's handlers on its public setRequestHandler, for one
 * request (HTTP: createMcpHandler's factory, modern.ts) or one stdio connection (serveStdio's, src/mcp/stdio.ts).
 * The SDK checks the envelope and headers, answers server/discover, stamps resultType, cache fields and the
 * server's identity; run_command is an elicited decision or a task (call.ts, tasks.ts), on the caller's kept Spool
 * connection. The tools and resources are the same table and functions a 2025-11-25 session's server answers with
 * (src/mcp/spool/).
 */

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
    guard("tools/call", (request, ctx) => callTool(deps, needs(ctx), request.params as Record<string, unknown>, ctx)),
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
