import type { MethodName, NotificationName, ParamsOf, ResultOf, SpoolNotifications } from "../../client/api.js";

/** An error the server answered with; `code` is the catalogue's string (NOT_FOUND, CONFLICT, …). */
export class RpcError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly data: Record<string, unknown> | undefined,
  ) {
    super(message);
  }
}

type Handler = (params: never) => void;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * JSON-RPC 2.0 over the page's WebSocket. The browser sends the session cookie with the upgrade; nothing
 * here ever holds a token. One connection joins one project; the app opens a new one to change project.
 */
export class Rpc {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, Pending>();
  readonly #handlers = new Map<string, Set<Handler>>();
  #nextId = 1;
  #closed = false;
  #onClose: ((code: number, reason: string) => void) | null = null;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.addEventListener("message", (event) => this.#receive(String(event.data)));
    socket.addEventListener("close", (event) => {
      this.#closed = true;
      for (const pending of this.#pending.values()) pending.reject(new Error("the connection closed before the server answered"));
      this.#pending.clear();
      this.#onClose?.(event.code, event.reason);
    });
  }

  /** Opens the WebSocket of the page's own server; rejects when the upgrade is refused (no session: 401). */
  static connect(url: string): Promise<Rpc> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      const failed = () => reject(new Error("could not connect"));
      socket.addEventListener("error", failed, { once: true });
      socket.addEventListener(
        "open",
        () => {
          socket.removeEventListener("error", failed);
          resolve(new Rpc(socket));
        },
        { once: true },
      );
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.#onClose = listener;
  }

  call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    if (this.#closed) return Promise.reject(new Error("not connected"));
    const id = this.#nextId++;
    return new Promise<ResultOf<M>>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  on<N extends NotificationName>(method: N, handler: (params: SpoolNotifications[N]) => void): void {
    let set = this.#handlers.get(method);
    if (!set) this.#handlers.set(method, (set = new Set()));
    set.add(handler as Handler);
  }

  close(): void {
    this.#onClose = null;
    this.#socket.close(1000, "page closed the connection");
  }

  #receive(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    for (const one of Array.isArray(message) ? message : [message]) this.#dispatch(one as Record<string, unknown>);
  }

  #dispatch(message: Record<string, unknown>): void {
    if (typeof message.method === "string") {
      // A server → client request (runner/exec) is not for a page: answer that it is not handled.
      if (message.id !== undefined) {
        this.#socket.send(JSON.stringify({ jsonrpc: "2.0", id: message.id, error: { code: -32601, message: "The web view runs nothing" } }));
        return;
      }
      for (const handler of this.#handlers.get(message.method) ?? []) (handler as (p: unknown) => void)(message.params);
      return;
    }
    const pending = this.#pending.get(Number(message.id));
    if (!pending) return;
    this.#pending.delete(Number(message.id));
    const error = message.error as { message?: string; data?: { code?: string } & Record<string, unknown> } | undefined;
    if (error) pending.reject(new RpcError(error.message ?? "error", error.data?.code, error.data));
    else pending.resolve(message.result);
  }
}
