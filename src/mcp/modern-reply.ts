import { CODES, META, ModernError } from "./modern-wire.js";

/*
 * The answer to one MCP 2026-07-28 request over stdio (modern-stdio.ts): lines on the process's one output,
 * cancelled by notifications/cancelled. (Over HTTP the v2 SDK's createMcpHandler answers: modern.ts.)
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
