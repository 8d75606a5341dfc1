import { errorMessage, type Reply, resultMessage } from "./modern-reply.js";

/*
 * The answer to one MCP 2026-07-28 request over stdio: lines on the process's one output, shared by every
 * request. Its notifications go out as they come (progress, a subscription's); the client cancels it with
 * notifications/cancelled, after which nothing more is sent for it (the stdio binding's rule). When spool mcp
 * ends (stdin closed, SIGTERM) an open subscriptions/listen is answered with its completion before it goes.
 */

export class LineReply implements Reply {
  readonly #controller = new AbortController();
  #done = false;
  #closing: Record<string, unknown> | null = null;

  constructor(
    private readonly send: (message: unknown) => void,
    private readonly id: string | number | null,
    private readonly serverInfo: { name: string; version: string },
  ) {}

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Over stdio notifications may always go first: there is nothing to switch. */
  stream(): void {}

  notify(notification: { method: string; params?: Record<string, unknown> }): void {
    if (!this.#done) this.send({ jsonrpc: "2.0", ...notification });
  }

  keepAlive(): void {}

  result(result: Record<string, unknown>): void {
    if (this.#finish()) this.send(resultMessage(this.id, result, this.serverInfo));
  }

  error(error: unknown): void {
    if (this.#finish()) this.send(errorMessage(this.id, error).body);
  }

  /** The client's notifications/cancelled: the work stops and no response goes out. */
  cancel(reason: string): void {
    if (!this.#finish()) return;
    this.#controller.abort(new Error(reason));
  }

  closesWith(result: Record<string, unknown>): void {
    this.#closing = result;
  }

  /** The server ends it (spool mcp is closing): the work stops, answered with `closesWith`'s result or not at all. */
  close(): void {
    if (!this.#finish()) return;
    if (this.#closing) this.send(resultMessage(this.id, this.#closing, this.serverInfo));
    this.#controller.abort(new Error("the server closed the request"));
  }

  #finish(): boolean {
    if (this.#done) return false;
    this.#done = true;
    return true;
  }
}
