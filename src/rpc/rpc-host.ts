import type { JSONRPCRequest, JSONRPCResponse } from "json-rpc-2.0";
import type { Logger } from "../logger.js";
import { type PrincipalRef, RUNNER_NOTIFICATIONS, roleAllows, type TransportKind } from "../protocol/roles.js";
import { ClientMemory } from "./budget.js";
import { checkedParams, checkedResult, frameParams, inlineBytes, ParamsRefused, withoutInlineBytes } from "./call-input.js";
import { DEFAULT_CONCURRENCY, ServerConnection } from "./connection.js";
import { forbidden, type RpcErrorObject, rpcError, SpoolError, toRpcError } from "./errors.js";
import type { MethodContext, MethodDefinition } from "./method.js";
import { MethodRegistry } from "./registry.js";
import { OutgoingReply, ReplyParts, serializeWithField } from "./reply-bytes.js";
import { TurnScheduler } from "./scheduler.js";
import type { Transport } from "./transport.js";

export interface RpcHostEvents {
  /** Ordered calls (stream appends, finishing calls) one connection may have unanswered; more are LIMIT_EXCEEDED. */
  maxOrderedInFlight?: number;
  /** Requests a batch may hold; a longer batch is answered with one INVALID_REQUEST and nothing of it runs. */
  maxBatchSize?: number;
  /** Requests one connection may have received and not yet answered (queued or running); at it the connection stops reading until half are answered. */
  maxRequestsInFlight?: number;
  /** Output one connection may leave unread by its peer; a message past it closes the connection (1008). */
  maxOutboundBytes?: number;
  /** Memory all connections together may hold; past it the one holding the most is closed (1013). */
  maxClientMemoryBytes?: number;
  /** Requests of one connection that run at once. */
  concurrency?: number;
  /**
   * For a method with `ownRuns` called by a connection below `person`: throws FORBIDDEN unless the run it names
   * was created by the connection's principal (the server asks the core).
   */
  authorizeOwnRun?(def: MethodDefinition, params: unknown, connection: ServerConnection): Promise<void>;
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

/**
 * Dispatches JSON-RPC messages of every connection to the registered methods.
 *
 * Each connection's requests run from its own queue (FIFO, a bounded number
 * at once, in slices of the event loop shared fairly with the other
 * connections), so one client's burst or batch delays another's requests by
 * a slice, not by the whole burst. What a connection may ask for at once is
 * capped: a batch's length (`maxBatchSize`), its requests received and not
 * answered (`maxRequestsInFlight`), a batch's reply (`maxOutboundBytes`).
 */
export class RpcHost {
  readonly registry = new MethodRegistry();
  readonly connections = new Set<ServerConnection>();
  /** Memory held for all clients together, against `maxClientMemoryBytes`. */
  readonly memory: ClientMemory | undefined;
  readonly #scheduler = new TurnScheduler();
  #installed = false;
  /** The fields every handler's context gets from `events.context`, made at the first call (after start-up). */
  #context: Record<string, unknown> | undefined;
  #inFlight = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(
    private readonly log: Logger,
    private readonly events: RpcHostEvents,
  ) {
    this.memory = events.maxClientMemoryBytes ? new ClientMemory(events.maxClientMemoryBytes) : undefined;
  }

  /** Freezes the registry; requests find their methods from now on. Called once at start-up. */
  install(): void {
    if (this.#installed) return;
    this.#installed = true;
    this.registry.freeze();
  }

  /**
   * Takes a connection that acts as `principal` (in-process ones, with none, act as the home's admin), come by `via`,
   * counting against `share`'s bounds (its own when none is given).
   */
  accept(transport: Transport, principal?: PrincipalRef, via?: TransportKind, share?: string): ServerConnection {
    const connection = new ServerConnection(
      transport,
      {
        dispatch: (message, conn, bytes) => this.#dispatch(message, conn, bytes),
        connectionClosed: (conn) => {
          this.connections.delete(conn);
          this.events.connectionClosed(conn);
        },
      },
      {
        maxOutboundBytes: this.events.maxOutboundBytes,
        memory: this.memory,
        scheduler: this.#scheduler,
        concurrency: this.events.concurrency ?? DEFAULT_CONCURRENCY,
        maxRequestsInFlight: this.events.maxRequestsInFlight,
        warn: (message) => this.log.warn(message),
        principal,
        via,
        ...(share === undefined ? {} : { share }),
      },
    );
    this.connections.add(connection);
    this.events.connectionOpened(connection);
    return connection;
  }

  /** Sends a notification to every initialized connection of one project. */
  notifyProject(projectId: number, method: string, params: unknown): void {
    let text: string | null = null;
    for (const connection of this.connections) {
      if (connection.project?.id !== projectId) continue;
      // A runner's credential reads nothing of the project: it hears only what it must act on.
      if (connection.principal.role === "runner" && !RUNNER_NOTIFICATIONS.has(method)) continue;
      // Serialized once, however many connections the project has.
      text ??= JSON.stringify({ jsonrpc: "2.0", method, params });
      connection.sendSerialized(text);
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

  #dispatch(message: unknown, connection: ServerConnection, bytes?: Buffer): Promise<string | OutgoingReply | null> {
    return Array.isArray(message) ? this.#batch(message, connection) : this.#single(message, connection, undefined, bytes);
  }

  async #batch(message: unknown[], connection: ServerConnection): Promise<string | OutgoingReply | null> {
    if (message.length === 0) return JSON.stringify(invalidRequest(null));
    const maxBatch = this.events.maxBatchSize ?? Number.POSITIVE_INFINITY;
    if (message.length > maxBatch) {
      return JSON.stringify({
        jsonrpc: "2.0",
        id: null,
        error: rpcError(
          "INVALID_REQUEST",
          `A batch may hold at most ${maxBatch} requests (limits.maxBatchSize); this one holds ${message.length}: send it as smaller batches`,
          { limit: maxBatch, size: message.length },
        ),
      });
    }
    // Each request of a batch is checked and answered on its own; notifications get no entry.
    // The reply is one message, so it is kept within the output budget as it grows.
    const budget = this.events.maxOutboundBytes ?? Number.POSITIVE_INFINITY;
    const batch = { bytes: 2, over: false, budget };
    let held = 0;
    // What the replies built as bytes run once the batch's reply is handed over (a read's bytes go back when it is flushed).
    const hooks: (() => void)[] = [];
    const parts = await Promise.all(
      message.map(async (element) => {
        const reply = await this.#single(element, connection, batch);
        if (reply === null) return null;
        let text: string | Buffer;
        if (typeof reply === "string") text = reply;
        else {
          hooks.push(...reply.sent);
          text = reply.data;
        }
        // Small replies (errors, acknowledgements) always fit: past the budget by at most the batch's length in KiB.
        if (batch.bytes + text.length + 1 > budget && text.length > SMALL_REPLY) {
          batch.over = true;
          text = JSON.stringify(replyTooLarge(idOf(element), budget));
        }
        batch.bytes += text.length + 1;
        connection.hold(text.length);
        held += text.length;
        return text;
      }),
    );
    connection.hold(-held);
    const present = parts.filter((p) => p !== null);
    if (present.length === 0) {
      new OutgoingReply("", hooks).done();
      return null;
    }
    if (present.every((p) => typeof p === "string")) {
      const text = `[${present.join(",")}]`;
      return hooks.length ? new OutgoingReply(text, hooks) : text;
    }
    // A reply built as bytes among them: the batch's reply is bytes too, the texts encoded into it.
    const size = present.reduce((sum, p) => sum + (typeof p === "string" ? Buffer.byteLength(p) : p.length), 1 + present.length);
    const out = Buffer.allocUnsafe(size);
    let pos = 0;
    present.forEach((p, i) => {
      out[pos++] = i === 0 ? 0x5b : 0x2c;
      pos += typeof p === "string" ? out.write(p, pos, "utf8") : p.copy(out, pos);
    });
    out[pos] = 0x5d;
    return new OutgoingReply(out, hooks);
  }

  /** One request: refused at once when it cannot be taken, else queued on its connection and answered when it has run. */
  #single(message: unknown, connection: ServerConnection, batch?: { over: boolean; budget: number }, bytes?: Buffer): Promise<string | OutgoingReply | null> {
    const problem = requestProblem(message);
    if (problem) return Promise.resolve(JSON.stringify(problem));
    const request = message as JSONRPCRequest;
    const def = this.#installed ? this.registry.methods.get(request.method) : undefined;
    if (!def) return refused(request.id, rpcError("METHOD_NOT_FOUND", `Method not found: ${String(request.method)}`));
    // A connection stops reading at maxRequestsInFlight; what one socket read already brought past it still
    // queues. Over a transport that cannot pause, requests past it are refused.
    const maxRequests = this.events.maxRequestsInFlight ?? Number.POSITIVE_INFINITY;
    if (!connection.canPauseReading && connection.requests.size >= maxRequests) {
      return refused(
        request.id,
        rpcError("LIMIT_EXCEEDED", `This connection already has ${maxRequests} requests unanswered (limits.maxRequestsInFlight); wait for their replies`, {
          limit: maxRequests,
        }),
      );
    }
    const maxOrdered = this.events.maxOrderedInFlight ?? Number.POSITIVE_INFINITY;
    if (def.ordered && connection.project && connection.orderedPending >= maxOrdered) {
      return refused(
        request.id,
        rpcError("LIMIT_EXCEEDED", `This connection already has ${maxOrdered} unacknowledged ${def.name} calls; wait for their replies`, { limit: maxOrdered }),
      );
    }
    if (def.ordered) connection.orderedPending++;
    return connection.requests.run(
      def.name,
      async () => {
        try {
          // A batch whose reply is already over the budget: what has not started is not run.
          if (batch?.over) return request.id === undefined ? null : JSON.stringify(replyTooLarge(request.id, batch.budget));
          const parts = new ReplyParts(batch !== undefined);
          this.#inFlight++;
          try {
            return serialize(await this.#invoke(def, request, connection, bytes, parts), parts);
          } finally {
            if (--this.#inFlight === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
          }
        } finally {
          if (def.ordered) connection.orderedPending--;
        }
      },
      null,
      // Ordered calls (appends) overlap: capped by maxOrderedInFlight and cheap to start, they share group commits.
      Boolean(def.ordered),
    );
  }

  /** `frameBytes`: the raw bytes of a binary frame, for the method's bytes field. */
  async #invoke(
    def: MethodDefinition,
    request: JSONRPCRequest,
    connection: ServerConnection,
    frameBytes: Buffer | undefined,
    parts: ReplyParts,
  ): Promise<JSONRPCResponse | null> {
    // Built for the fewest objects a call: one per stream chunk (no closures over the call, no { success, data } wrappers).
    const id = request.id;
    try {
      const role = def.role ?? "admin";
      if (!roleAllows(connection.principal.role, role)) throw forbidden(def.name, def.refusalRole?.(request.params) ?? role, connection.principal.role);
      if (def.access !== "none" && !connection.project) {
        throw new SpoolError("NOT_INITIALIZED", `Call "initialize" before "${def.name}"`);
      }
      // Parse, then call (call-input.ts): the params from the JSON text, a binary frame or an in-process Buffer.
      let params: unknown = request.params ?? {};
      let bytes: Buffer | undefined;
      if (frameBytes !== undefined) {
        params = frameParams(def, params);
        bytes = frameBytes;
      } else if ((bytes = inlineBytes(def, params)) !== undefined) {
        params = withoutInlineBytes(def, params);
      }
      const data = checkedParams(def, params);
      if (data instanceof ParamsRefused) return failed(id, data.error);
      if (def.ownRuns && !roleAllows(connection.principal.role, "person")) await this.events.authorizeOwnRun?.(def, data, connection);
      // One shape for every call (`bytes` undefined when there are none): the call's fields, then the shared ones it
      // does not set. Copied key by key: a spread of them in front of the call's fields cost ~2.3 KB a call.
      const ctx: MethodContext = {
        connection,
        project: connection.project!,
        notify: connection.notifier,
        signal: connection.signal,
        reply: parts,
        bytes,
      };
      const shared = (this.#context ??= this.events.context?.() ?? {});
      for (const key in shared) if (!(key in ctx)) (ctx as unknown as Record<string, unknown>)[key] = shared[key];
      const result = await (def.ordered
        ? connection.runOrdered(
            typeof def.ordered === "function" ? def.ordered(data) : "",
            (admit) => {
              if (def.pipelined) ctx.admit = admit;
              return Promise.resolve(def.handler(data, ctx));
            },
            def.pipelined === true,
          )
        : def.handler(data, ctx));
      const checked = checkedResult(def, result, this.log);
      if (checked === true) return succeeded(id, result);
      return checked.ok ? succeeded(id, checked.value) : failed(id, checked.error);
    } catch (error) {
      return failed(
        id,
        toRpcError(error, (msg, err) => this.log.error(`${msg} (${def.name})`, err)),
      );
    }
  }
}

/** A request refused before it ran, as its reply's text (none for a notification). */
function refused(id: JSONRPCRequest["id"], error: RpcErrorObject): Promise<string | null> {
  return Promise.resolve(id === undefined ? null : JSON.stringify({ jsonrpc: "2.0", id, error }));
}

/** The reply to a request (none for a notification: no id). */
function succeeded(id: JSONRPCRequest["id"], result: unknown): JSONRPCResponse | null {
  return id === undefined ? null : ({ jsonrpc: "2.0", id, result } as JSONRPCResponse);
}

function failed(id: JSONRPCRequest["id"], error: RpcErrorObject): JSONRPCResponse | null {
  return id === undefined ? null : ({ jsonrpc: "2.0", id, error } as JSONRPCResponse);
}

/**
 * A call's reply as it goes out: JSON text, or bytes when the handler gave a field as bytes (ReplyParts),
 * with the handler's hooks to run once it is handed to the connection (at once when there is no reply).
 */
function serialize(reply: JSONRPCResponse | null, parts: ReplyParts): string | OutgoingReply | null {
  const hooks = parts.takeHooks();
  if (reply === null) {
    new OutgoingReply("", hooks).done();
    return null;
  }
  const field = parts.field;
  const result = "result" in reply ? (reply.result as unknown) : undefined;
  const data =
    field && typeof result === "object" && result !== null && Object.hasOwn(result, field.name)
      ? serializeWithField(reply as unknown as Record<string, unknown>, field)
      : JSON.stringify(reply);
  return typeof data === "string" && hooks.length === 0 ? data : new OutgoingReply(data, hooks);
}

/** A reply this short is sent whatever the batch's reply already holds. */
const SMALL_REPLY = 1024;

const idOf = (message: unknown): string | number | null => {
  const id = (message as { id?: unknown } | null)?.id;
  return validId(id) ? id : null;
};

function replyTooLarge(id: string | number | null, budget: number): JSONRPCResponse {
  return {
    jsonrpc: "2.0",
    id,
    error: rpcError("PAYLOAD_TOO_LARGE", `The batch's reply would pass ${budget} bytes (limits.maxOutboundBytes); send this call alone or in a smaller batch`, {
      limit: budget,
    }),
  } as JSONRPCResponse;
}
