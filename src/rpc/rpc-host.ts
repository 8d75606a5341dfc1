import { type JSONRPCRequest, type JSONRPCResponse, JSONRPCServer } from "json-rpc-2.0";
import type { z } from "zod";
import type { Logger } from "../logger.js";
import { ServerConnection } from "./connection.js";
import { errorNameForCode, type RpcErrorObject, rpcError, SpoolError, toRpcError } from "./errors.js";
import type { MethodContext, MethodDefinition } from "./method.js";
import { MethodRegistry } from "./registry.js";
import type { Transport } from "./transport.js";

export interface RpcHostEvents {
  /** Ordered calls (stream appends, finishing calls) one connection may have unanswered; more are LIMIT_EXCEEDED. */
  maxOrderedInFlight?: number;
  /** Fields every handler's context gets besides the connection's (the core, the services). */
  context?: () => Record<string, unknown>;
  connectionOpened(connection: ServerConnection): void;
  connectionClosed(connection: ServerConnection): void;
}

const validId = (id: unknown): id is string | number | null => id === null || typeof id === "string" || (typeof id === "number" && Number.isFinite(id));

function invalidRequest(id: string | number | null): JSONRPCResponse {
  return { jsonrpc: "2.0", id, error: rpcError("INVALID_REQUEST", "Invalid Request") } as JSONRPCResponse;
}

/**
 * JSON-RPC 2.0's request shape, checked before anything else: an object with
 * jsonrpc "2.0", a string method, an id that is a string, number or null, and
 * params that are an object or an array. Anything else is -32600, with the id
 * when it is a valid one.
 */
function requestProblem(message: unknown): JSONRPCResponse | null {
  if (typeof message !== "object" || message === null || Array.isArray(message)) return invalidRequest(null);
  const m = message as { jsonrpc?: unknown; method?: unknown; id?: unknown; params?: unknown };
  const id = "id" in m && validId(m.id) ? m.id : null;
  if ("id" in m && !validId(m.id)) return invalidRequest(null);
  if (m.jsonrpc !== "2.0" || typeof m.method !== "string") return invalidRequest(id);
  if (m.params !== undefined && (typeof m.params !== "object" || m.params === null)) return invalidRequest(id);
  return null;
}

/** Turns zod issues into `[{path: "a.b", message}]`, the shape documented for INVALID_PARAMS. */
export function describeIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join(".") || "(params)",
    message: issue.code === "unrecognized_keys" ? `unknown field(s): ${issue.keys.join(", ")}` : issue.message,
  }));
}

/** Dispatches JSON-RPC messages of every connection to the registered methods. */
export class RpcHost {
  readonly registry = new MethodRegistry();
  readonly connections = new Set<ServerConnection>();
  readonly #server = new JSONRPCServer<ServerConnection>();
  #installed = false;
  #inFlight = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(
    private readonly log: Logger,
    private readonly events: RpcHostEvents,
  ) {
    this.#server.handleMethodNotFound = async (request: JSONRPCRequest) =>
      request.id === undefined ? null : { jsonrpc: "2.0", id: request.id, error: rpcError("METHOD_NOT_FOUND", `Method not found: ${String(request.method)}`) };
  }

  /** Binds every registered method to the JSON-RPC server; called once at start-up. */
  install(): void {
    if (this.#installed) return;
    this.#installed = true;
    this.registry.freeze();
    for (const def of this.registry.methods.values()) {
      this.#server.addMethodAdvanced(def.name, (request, connection) => this.#call(def, request, connection));
    }
  }

  accept(transport: Transport): ServerConnection {
    const connection = new ServerConnection(transport, {
      dispatch: (message, conn) => this.#dispatch(message, conn),
      connectionClosed: (conn) => {
        this.connections.delete(conn);
        this.events.connectionClosed(conn);
      },
    });
    this.connections.add(connection);
    this.events.connectionOpened(connection);
    return connection;
  }

  /** Sends a notification to every initialized connection of one project. */
  notifyProject(projectId: number, method: string, params: unknown): void {
    for (const connection of this.connections) {
      if (connection.project?.id === projectId) connection.notify(method, params);
    }
  }

  /** Resolves once no handler is running (or after `timeoutMs`): shutdown lets in-flight writes finish. */
  idle(timeoutMs: number): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async #dispatch(message: unknown, connection: ServerConnection): Promise<unknown> {
    if (Array.isArray(message)) {
      if (message.length === 0) return invalidRequest(null);
      // Each request of a batch is checked and answered on its own; notifications get no entry.
      const replies = await Promise.all(message.map((m) => this.#single(m, connection)));
      const present = replies.filter((r) => r !== null);
      return present.length ? present : null;
    }
    return this.#single(message, connection);
  }

  async #single(message: unknown, connection: ServerConnection): Promise<unknown> {
    const problem = requestProblem(message);
    if (problem) return problem;
    const reply = await this.#server.receive(message as JSONRPCRequest, connection);
    return reply ? withErrorCode(reply as JSONRPCResponse) : null;
  }

  async #call(def: MethodDefinition, request: JSONRPCRequest, connection: ServerConnection): Promise<JSONRPCResponse | null> {
    this.#inFlight++;
    try {
      return await this.#invoke(def, request, connection);
    } finally {
      if (--this.#inFlight === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
    }
  }

  async #invoke(def: MethodDefinition, request: JSONRPCRequest, connection: ServerConnection): Promise<JSONRPCResponse | null> {
    const respond = (body: { result: unknown } | { error: RpcErrorObject }): JSONRPCResponse | null =>
      request.id === undefined ? null : ({ jsonrpc: "2.0", id: request.id, ...body } as JSONRPCResponse);
    try {
      if (def.access !== "none" && !connection.project) {
        throw new SpoolError("NOT_INITIALIZED", `Call "initialize" before "${def.name}"`);
      }
      const parsed = def.params.safeParse(request.params ?? {});
      if (!parsed.success) {
        return respond({
          error: rpcError("INVALID_PARAMS", `Invalid params for ${def.name}`, { issues: describeIssues(parsed.error) }),
        });
      }
      const ctx: MethodContext = {
        ...this.events.context?.(),
        connection,
        project: connection.project!,
        notify: (method, params) => connection.notify(method, params),
        signal: connection.signal,
      };
      const run = () => Promise.resolve(def.handler(parsed.data, ctx));
      const maxQueued = this.events.maxOrderedInFlight ?? Number.POSITIVE_INFINITY;
      if (def.ordered && connection.orderedInFlight >= maxQueued) {
        throw new SpoolError("LIMIT_EXCEEDED", `This connection already has ${maxQueued} unacknowledged ${def.name} calls; wait for their replies`, {
          limit: maxQueued,
        });
      }
      const key = typeof def.ordered === "function" ? def.ordered(parsed.data) : "";
      const result = await (def.ordered ? connection.runOrdered(key, run) : run());
      const checked = def.result.safeParse(result);
      if (!checked.success) {
        this.log.error(`result of ${def.name} does not match its schema`, describeIssues(checked.error));
        return respond({ error: rpcError("INTERNAL_ERROR", "Internal error") });
      }
      return respond({ result: checked.data });
    } catch (error) {
      return respond({ error: toRpcError(error, (msg, err) => this.log.error(`${msg} (${def.name})`, err)) });
    }
  }
}

/** The library's own error responses (-32600 …) get the catalogue's `data.code` too. */
function withErrorCode(response: JSONRPCResponse): JSONRPCResponse {
  if (!("error" in response) || !response.error) return response;
  const data = response.error.data as Record<string, unknown> | undefined;
  if (data && typeof data.code === "string") return response;
  const name = errorNameForCode(response.error.code) ?? "INTERNAL_ERROR";
  return { ...response, error: { ...response.error, data: { ...(data ?? {}), code: name } } };
}
