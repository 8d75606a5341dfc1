import { randomBytes } from "node:crypto";
import { JSONRPCClient, type JSONRPCResponse } from "json-rpc-2.0";
import type { ConnectionHandle, ProjectRef } from "./connection-context.js";
import { rpcError, SpoolError } from "./errors.js";
import { ORDER_SEP } from "./method.js";
import type { Transport } from "./transport.js";

export interface ConnectionHost {
  /** Handles one parsed request or batch; resolves to what must be sent back (or null). */
  dispatch(message: unknown, connection: ServerConnection): Promise<unknown>;
  connectionClosed(connection: ServerConnection): void;
}

function isResponseLike(message: unknown): message is JSONRPCResponse {
  if (typeof message !== "object" || message === null || Array.isArray(message)) return false;
  const m = message as Record<string, unknown>;
  return m.jsonrpc === "2.0" && !("method" in m) && ("result" in m || "error" in m);
}

/** The server side of one client connection, over any transport. */
export class ServerConnection implements ConnectionHandle {
  readonly id = randomBytes(6).toString("hex");
  project: ProjectRef | null = null;
  clientInfo: { name: string; version: string } | null = null;
  readonly state = new Map<string | symbol, unknown>();
  readonly #abort = new AbortController();
  readonly #closeListeners: (() => void)[] = [];
  readonly #client: JSONRPCClient;
  #closed = false;
  constructor(
    private readonly transport: Transport,
    private readonly host: ConnectionHost,
  ) {
    this.#client = new JSONRPCClient((request) => {
      this.#send(request);
    });
    transport.onMessage((text) => void this.#receive(text));
    transport.onClose(() => this.#handleClose());
  }

  get closed(): boolean {
    return this.#closed;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  #orderedInFlight = 0;
  /** The last ordered call per order key while it runs, grouped by the key's first level (its producer). */
  readonly #tails = new Map<string, Map<string, Promise<unknown>>>();

  /** Ordered calls received and not yet answered. */
  get orderedInFlight(): number {
    return this.#orderedInFlight;
  }

  /**
   * Runs `work` after every earlier ordered call of this connection whose key
   * is the same as `key`, an ancestor of it or a descendant ("" conflicts with
   * everything). Keys have two levels (producer, channel), so only the calls
   * of the same producer are looked at: the cost does not grow with the
   * number of producers a connection streams.
   */
  runOrdered<T>(key: string, work: () => Promise<T>): Promise<T> {
    const group = key.split(ORDER_SEP)[0]!;
    const before: Promise<unknown>[] = [];
    const collect = (g: string, all: boolean) => {
      for (const [other, tail] of this.#tails.get(g) ?? []) if (all || other === key || other === g || key === g) before.push(tail);
    };
    if (key === "") for (const g of this.#tails.keys()) collect(g, true);
    else {
      collect(group, false);
      collect("", true);
    }
    this.#orderedInFlight++;
    const next = (before.length ? Promise.allSettled(before) : Promise.resolve()).then(work).finally(() => this.#orderedInFlight--);
    const tails = this.#tails.get(group) ?? new Map<string, Promise<unknown>>();
    this.#tails.set(group, tails);
    const tail = next
      .catch(() => undefined)
      .then(() => {
        if (tails.get(key) !== tail) return;
        tails.delete(key);
        if (tails.size === 0 && this.#tails.get(group) === tails) this.#tails.delete(group);
      });
    tails.set(key, tail);
    return next;
  }

  join(project: ProjectRef, clientInfo: { name: string; version: string } | null): void {
    if (this.project) throw new SpoolError("ALREADY_INITIALIZED", `This connection is already initialized for project "${this.project.name}"`);
    this.project = project;
    this.clientInfo = clientInfo;
  }

  notify(method: string, params: unknown): void {
    this.#send({ jsonrpc: "2.0", method, params });
  }

  request(method: string, params: unknown, timeoutMs?: number): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error("connection closed"));
    const requester = timeoutMs ? this.#client.timeout(timeoutMs) : this.#client;
    return Promise.resolve(requester.request(method, params as Record<string, unknown>));
  }

  bufferedAmount(): number {
    return this.transport.bufferedAmount();
  }

  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#closeListeners.push(listener);
  }

  close(code = 1000, reason = ""): void {
    this.transport.close(code, reason);
  }

  async #receive(text: string): Promise<void> {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      this.#send({ jsonrpc: "2.0", id: null, error: rpcError("PARSE_ERROR", "Parse error: the message is not valid JSON") });
      return;
    }
    if (isResponseLike(message)) {
      this.#client.receive(message);
      return;
    }
    const reply = await this.host.dispatch(message, this);
    if (reply != null) this.#send(reply);
  }

  #send(message: unknown): void {
    if (this.#closed) return;
    try {
      this.transport.send(JSON.stringify(message));
    } catch {
      // The socket went away between our check and the write; the close handler cleans up.
    }
  }

  #handleClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort(new Error("connection closed"));
    this.#client.rejectAllPendingRequests("connection closed");
    for (const listener of this.#closeListeners.splice(0)) {
      try {
        listener();
      } catch {
        // A plugin's cleanup failing must not stop the others.
      }
    }
    this.host.connectionClosed(this);
  }
}
