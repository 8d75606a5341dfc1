import { errorMessage, type Reply, resultMessage } from "./modern-reply.js";

/*
 * The answer to one MCP 2026-07-28 request over stdio: lines on the process's one output, shared by every
 * request. Its notifications go out as they come (progress, a subscription's); the client cancels it with
 * notifications/cancelled, after which nothing more is sent for it (the stdio binding's rule).
 */

export class LineReply implements Reply {
  readonly #controller = new AbortController();
  #done = false;

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

  /** The server ends it (it is closing): the work stops, without a response. */
  close(): void {
    if (this.#finish()) this.#controller.abort(new Error("the server closed the request"));
  }

  #finish(): boolean {
    if (this.#done) return false;
    this.#done = true;
    return true;
  }
}
