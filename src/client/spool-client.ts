import { JSONRPCClient, JSONRPCErrorException } from "json-rpc-2.0";
import type { Transport } from "../rpc/transport.js";
import { PROTOCOL_VERSION } from "../version.js";
import { connectWebSocket, type WebSocketOptions } from "./ws-transport.js";

/** An error response from the server, with the catalogue's string code. */
export class SpoolRpcError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly data: { code?: string; [key: string]: unknown } | undefined,
  ) {
    super(message);
  }

  /** The catalogue name (`NOT_FOUND`, `SEQ_GAP`, …). */
  get errorCode(): string | undefined {
    return this.data?.code;
  }
}

/** The connection closed before the server answered: the call may or may not have taken effect. */
export class ConnectionClosedError extends Error {
  override readonly name = "ConnectionClosedError";
}

type NotificationListener = (params: any) => void;
type RequestHandler = (params: any) => unknown;

/** A JSON-RPC client for Spool over any transport; handles notifications and server → client requests. */
export class SpoolClient {
  readonly #rpc: JSONRPCClient;
  readonly #listeners = new Map<string, Set<NotificationListener>>();
  readonly #handlers = new Map<string, RequestHandler>();
  readonly #closeListeners: ((code: number, reason: string) => void)[] = [];
  #closed = false;

  constructor(readonly transport: Transport) {
    this.#rpc = new JSONRPCClient((request) => {
      transport.send(JSON.stringify(request));
    });
    transport.onMessage((text) => this.#receive(text));
    transport.onClose((code, reason) => {
      this.#closed = true;
      this.#rpc.rejectAllPendingRequests(`connection closed (${code}${reason ? `: ${reason}` : ""})`);
      for (const l of this.#closeListeners) l(code, reason);
    });
  }

  static async connect(url: string, options: WebSocketOptions): Promise<SpoolClient> {
    return new SpoolClient(await connectWebSocket(url, options));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Calls a method; rejects with SpoolRpcError on an error response, or when `signal` aborts. */
  async request<T = any>(method: string, params: object = {}, options: { signal?: AbortSignal } = {}): Promise<T> {
    if (this.#closed) throw new ConnectionClosedError("connection closed");
    const call = Promise.resolve(this.#rpc.request(method, params as Record<string, unknown>));
    try {
      if (!options.signal) return (await call) as T;
      options.signal.throwIfAborted();
      return (await Promise.race([
        call,
        new Promise((_, reject) => options.signal!.addEventListener("abort", () => reject(options.signal!.reason), { once: true })),
      ])) as T;
    } catch (error) {
      if (error instanceof JSONRPCErrorException) {
        // Pending calls are rejected without error data when the connection closes.
        if (this.#closed && error.data === undefined) throw new ConnectionClosedError(error.message);
        throw new SpoolRpcError(error.message, error.code, error.data as never);
      }
      throw error;
    }
  }

  /** `initialize` with this library's protocol version. */
  initialize(project: string, extra: { root?: string; client?: { name: string; version: string } } = {}) {
    return this.request<{ protocolVersion: string; projectId: number; connectionId: string; server: { name: string; version: string } }>(
      "initialize",
      { project, protocolVersion: PROTOCOL_VERSION, ...extra },
    );
  }

  notify(method: string, params: object = {}): void {
    this.#rpc.notify(method, params as Record<string, unknown>);
  }

  /** Listens to a server notification; returns a function that stops listening. */
  on(method: string, listener: NotificationListener): () => void {
    const set = this.#listeners.get(method) ?? new Set();
    set.add(listener);
    this.#listeners.set(method, set);
    return () => set.delete(listener);
  }

  /** Resolves with the params of the next notification of `method` that passes `match`. */
  next<T = any>(method: string, match: (params: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`timed out waiting for ${method}`));
      }, timeoutMs);
      const off = this.on(method, (params: T) => {
        if (!match(params)) return;
        clearTimeout(timer);
        off();
        resolve(params);
      });
    });
  }

  /** Answers server → client requests of `method` (runners receive `runner/exec`). */
  handle(method: string, handler: RequestHandler): void {
    this.#handlers.set(method, handler);
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.#closeListeners.push(listener);
  }

  close(): void {
    this.transport.close(1000, "client closing");
  }

  #receive(text: string): void {
    let message: any;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    for (const m of Array.isArray(message) ? message : [message]) {
      if (m && typeof m.method === "string") {
        if (m.id === undefined || m.id === null) {
          for (const l of this.#listeners.get(m.method) ?? []) l(m.params);
        } else {
          void this.#answer(m.id, m.method, m.params);
        }
      } else {
        this.#rpc.receive(m);
      }
    }
  }

  async #answer(id: string | number, method: string, params: unknown): Promise<void> {
    const handler = this.#handlers.get(method);
    let reply: object;
    if (!handler) {
      reply = { jsonrpc: "2.0", id, error: { code: -32601, message: `Method not found: ${method}`, data: { code: "METHOD_NOT_FOUND" } } };
    } else {
      try {
        reply = { jsonrpc: "2.0", id, result: (await handler(params)) ?? null };
      } catch (error) {
        reply = { jsonrpc: "2.0", id, error: { code: -32603, message: error instanceof Error ? error.message : String(error), data: { code: "INTERNAL_ERROR" } } };
      }
    }
    if (!this.#closed) this.transport.send(JSON.stringify(reply));
  }
}
