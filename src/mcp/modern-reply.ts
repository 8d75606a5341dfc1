import type { IncomingMessage, ServerResponse } from "node:http";
import { CODES, META, ModernError } from "./modern-wire.js";

/*
 * The answer to one MCP 2026-07-28 request: one JSON object, or (when the client accepts it and the request may
 * take long) an SSE stream carrying the request's notifications and then its response. Closing the stream is
 * the client's cancel (`aborted`).
 */

/** The most notifications one SSE answer holds back for a slow client before it is closed. */
const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;

export class Reply {
  readonly #controller = new AbortController();
  #stream = false;
  #done = false;

  constructor(
    private readonly response: ServerResponse,
    private readonly id: string | number | null,
    private readonly serverInfo: { name: string; version: string },
  ) {
    response.once("close", () => {
      if (!this.#done) this.#controller.abort(new Error("the client closed the request's stream"));
    });
  }

  /** Aborted when the client closes the request's stream (its cancel) or the server ends it. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Answers as an SSE stream from now on (if the client accepts one), so notifications can go first. */
  stream(request: IncomingMessage): void {
    if (this.#stream || this.response.headersSent) return;
    if (!/text\/event-stream/i.test(String(request.headers.accept ?? ""))) return;
    this.#stream = true;
    this.response.writeHead(200, {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-store",
      "X-Accel-Buffering": "no",
      "X-Content-Type-Options": "nosniff",
      Connection: "keep-alive",
    });
    this.response.flushHeaders();
  }

  /** A notification on this request's stream (dropped when the answer is one JSON object). */
  notify(notification: { method: string; params?: Record<string, unknown> }): void {
    if (!this.#stream || this.#done || this.response.destroyed) return;
    if (this.response.writableLength > MAX_BACKLOG_BYTES) {
      this.response.destroy();
      return;
    }
    this.response.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", ...notification })}\n\n`);
  }

  /** An SSE comment keeping a quiet stream open through intermediaries. */
  keepAlive(): void {
    if (this.#stream && !this.#done && !this.response.destroyed) this.response.write(":\n\n");
  }

  /** The result: `resultType` complete unless it says otherwise, and the server's identity in its `_meta`. */
  result(result: Record<string, unknown>): void {
    const meta = { ...((result._meta as Record<string, unknown> | undefined) ?? {}), [META.server]: this.serverInfo };
    this.#send({ jsonrpc: "2.0", id: this.id, result: { resultType: "complete", ...result, _meta: meta } }, 200);
  }

  error(error: unknown): void {
    if (error instanceof ModernError) {
      this.#send(
        { jsonrpc: "2.0", id: this.id, error: { code: error.code, message: error.message, ...(error.data !== undefined ? { data: error.data } : {}) } },
        error.status,
      );
      return;
    }
    const e = error as { code?: unknown; message?: unknown; data?: unknown };
    const code = typeof e?.code === "number" ? e.code : CODES.internal;
    const message = typeof e?.message === "string" ? e.message : String(error);
    this.#send({ jsonrpc: "2.0", id: this.id, error: { code, message, ...(e?.data !== undefined ? { data: e.data } : {}) } }, 200);
  }

  #send(body: unknown, status: number): void {
    if (this.#done) return;
    this.#done = true;
    if (this.response.destroyed) return;
    const text = JSON.stringify(body);
    if (this.#stream) {
      this.response.end(`event: message\ndata: ${text}\n\n`);
      return;
    }
    this.response
      .writeHead(status, {
        "Content-Type": "application/json; charset=utf-8",
        "Content-Length": String(Buffer.byteLength(text)),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
      })
      .end(text);
  }

  /** Ends the answer without a response (the server is closing it). */
  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#controller.abort(new Error("the server closed the stream"));
    this.response.end();
  }
}
