import type { IncomingMessage, ServerResponse } from "node:http";
import { CODES, META, ModernError } from "./modern-wire.js";

/*
 * The answer to one MCP 2026-07-28 request, behind one interface for both transports. Over HTTP (HttpReply): one
 * JSON object, or (when the client accepts it and the request may take long) an SSE stream carrying the
 * request's notifications and then its response; closing the stream is the client's cancel. Over stdio
 * (modern-stdio.ts): lines on the process's one output, cancelled by notifications/cancelled.
 */

/** One request's answer, whatever carries it. */
export interface Reply {
  /** Aborted when the client cancels the request or the server ends it. */
  readonly signal: AbortSignal;
  /** HTTP: the request's headers (a traceparent); none over stdio. */
  readonly headers?: Record<string, string | string[] | undefined> | undefined;
  /** Notifications may go before the response from now on (HTTP: as SSE, if the client accepts it). */
  stream(): void;
  /** A notification related to this request (or, for subscriptions/listen, on its subscription). */
  notify(notification: { method: string; params?: Record<string, unknown> }): void;
  /** Keeps a quiet long answer open through intermediaries (nothing to do over stdio). */
  keepAlive(): void;
  result(result: Record<string, unknown>): void;
  error(error: unknown): void;
  /**
   * What `close` answers with when the server ends the request (a subscriptions/listen's completion, the
   * spec's graceful closure); without it the answer ends without a response.
   */
  closesWith(result: Record<string, unknown>): void;
  /** The server ends the answer (it is closing, or the credential went): with `closesWith`'s result, or none. */
  close(): void;
}

/** A result as this revision answers it: `resultType` complete unless it says otherwise, the server's identity in its `_meta`. */
export function resultMessage(id: string | number | null, result: Record<string, unknown>, serverInfo: { name: string; version: string }) {
  const meta = { ...((result._meta as Record<string, unknown> | undefined) ?? {}), [META.server]: serverInfo };
  return { jsonrpc: "2.0", id, result: { resultType: "complete", ...result, _meta: meta } };
}

/** An error as a JSON-RPC error response, with the HTTP status it goes with. */
export function errorMessage(id: string | number | null, error: unknown): { body: unknown; status: number } {
  if (error instanceof ModernError) {
    const body = { code: error.code, message: error.message, ...(error.data !== undefined ? { data: error.data } : {}) };
    return { body: { jsonrpc: "2.0", id, error: body }, status: error.status };
  }
  const e = error as { code?: unknown; message?: unknown; data?: unknown };
  const code = typeof e?.code === "number" ? e.code : CODES.internal;
  const message = typeof e?.message === "string" ? e.message : String(error);
  return { body: { jsonrpc: "2.0", id, error: { code, message, ...(e?.data !== undefined ? { data: e.data } : {}) } }, status: 200 };
}

/** The most notifications one SSE answer holds back for a slow client before it is closed. */
const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;

export class HttpReply implements Reply {
  readonly #controller = new AbortController();
  #stream = false;
  #done = false;
  #closing: Record<string, unknown> | null = null;

  constructor(
    private readonly request: IncomingMessage,
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

  get headers(): IncomingMessage["headers"] {
    return this.request.headers;
  }

  /** Answers as an SSE stream from now on (if the client accepts one), so notifications can go first. */
  stream(): void {
    if (this.#stream || this.response.headersSent) return;
    if (!/text\/event-stream/i.test(String(this.request.headers.accept ?? ""))) return;
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
    this.#send(resultMessage(this.id, result, this.serverInfo), 200);
  }

  error(error: unknown): void {
    const { body, status } = errorMessage(this.id, error);
    this.#send(body, status);
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

  closesWith(result: Record<string, unknown>): void {
    this.#closing = result;
  }

  /** The server ends the answer: the stream ends, after `closesWith`'s result when there is one. */
  close(): void {
    if (this.#done) return;
    if (this.#closing) this.result(this.#closing);
    else {
      this.#done = true;
      this.response.end();
    }
    this.#controller.abort(new Error("the server closed the stream"));
  }
}
