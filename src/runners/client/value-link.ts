import { ConnectionClosedError, SpoolRpcError } from "../../client/spool-client.js";
import type { Transport } from "../../rpc/transport.js";

/**
 * Calls over an in-process transport's value channel (`sendValue`): the
 * request reaches the server as the object it is, so a chunk's Buffer is
 * handed over without being encoded to text, put in JSON and parsed back.
 * The embedded runner streams through it; everything else it says goes
 * through its SpoolClient as JSON text. The server answers values with
 * values, so its ids never meet the SpoolClient's.
 */
export class ValueLink {
  /** Chunks may go as Buffers (see MethodDefinition.bytes). */
  readonly bytes = true;
  #nextId = 1;
  #closed = false;
  readonly #pending = new Map<number, { resolve(result: unknown): void; reject(error: Error): void }>();

  constructor(private readonly transport: Transport & Required<Pick<Transport, "sendValue" | "onValue">>) {
    transport.onValue((message) => this.#receive(message));
    transport.onClose((code, reason) => {
      this.#closed = true;
      const error = new ConnectionClosedError(`connection closed (${code}${reason ? `: ${reason}` : ""})`);
      for (const call of this.#pending.values()) call.reject(error);
      this.#pending.clear();
    });
  }

  /** A link over `transport` when it can carry values, else null. */
  static over(transport: Transport): ValueLink | null {
    const { sendValue, onValue } = transport;
    return sendValue && onValue ? new ValueLink(transport as Transport & Required<Pick<Transport, "sendValue" | "onValue">>) : null;
  }

  request<T = unknown>(method: string, params: object): Promise<T> {
    if (this.#closed) return Promise.reject(new ConnectionClosedError("connection closed"));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (result: unknown) => void, reject });
      try {
        this.transport.sendValue({ jsonrpc: "2.0", id, method, params });
      } catch (error) {
        this.#pending.delete(id);
        reject(new ConnectionClosedError(error instanceof Error ? error.message : String(error)));
      }
    });
  }

  #receive(message: object | string): void {
    let reply: { id?: unknown; result?: unknown; error?: { code: number; message: string; data?: SpoolRpcError["data"] } };
    try {
      reply = typeof message === "string" ? JSON.parse(message) : message;
    } catch {
      return;
    }
    const call = typeof reply.id === "number" ? this.#pending.get(reply.id) : undefined;
    if (!call) return;
    this.#pending.delete(reply.id as number);
    if (reply.error) call.reject(new SpoolRpcError(reply.error.message, reply.error.code, reply.error.data));
    else call.resolve(reply.result);
  }
}
