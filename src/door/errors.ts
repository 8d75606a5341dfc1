import type { ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { ERRORS } from "../protocol/errors.js";

/*
 * How /mcp and /acp say no: one shape for both, a JSON-RPC error (what clients of either protocol read), its HTTP
 * status beside it. A bound that is full is always 429 with Retry-After and `data: {code: "LIMIT_EXCEEDED", limit,
 * bound}`, whichever table it is and whoever holds it.
 */

/** An HTTP refusal answered as a JSON-RPC error. */
export class DoorError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    /** The JSON-RPC error code (invalid request unless said otherwise). */
    readonly code: number = ERRORS.INVALID_REQUEST.code,
    /** The error's data, and the request id it answers (null when none could be read). */
    readonly extra: { data?: unknown; id?: string | number | null } = {},
  ) {
    super(message);
  }
}

/** A bound is full for this caller (LIMIT_EXCEEDED, 429): nothing of the request was done. */
export class DoorFull extends DoorError {
  constructor(
    message: string,
    readonly limit: string,
    readonly bound: number,
    retryAfterS = 1,
  ) {
    super(429, message, { "Retry-After": String(retryAfterS) }, ERRORS.LIMIT_EXCEEDED.code, {
      data: { code: "LIMIT_EXCEEDED", limit, bound, retryAfterMs: retryAfterS * 1000 },
    });
  }
}

/** The error's JSON-RPC body, answering the request `id`. */
function errorBody(error: DoorError, id = error.extra.id): string {
  const { data } = error.extra;
  return `${JSON.stringify({ jsonrpc: "2.0", error: { code: error.code, message: error.message, ...(data !== undefined ? { data } : {}) }, id: id ?? null })}\n`;
}

const HEADERS = { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" };

/**
 * Answers the refusal, unless the answer began (then the response is cut). A body left unread (refused before it was
 * read, or past its deadline) is not waited for: the connection closes after the answer.
 */
export function answerError(response: ServerResponse, error: DoorError, id?: string | number | null): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const text = errorBody(error, id);
  const unread = response.req?.complete === false ? { Connection: "close" } : {};
  response.writeHead(error.status, { ...HEADERS, "Content-Length": String(Buffer.byteLength(text)), ...error.headers, ...unread }).end(text);
}

/** Answers what a door's handler threw: a DoorError as itself, anything else as 500 (logged here, never sent). */
export function answerFailure(response: ServerResponse, error: unknown, log: { warn(message: string): void }, door: string): void {
  if (!(error instanceof DoorError)) log.warn(`${door}: a request failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  answerError(response, error instanceof DoorError ? error : new DoorError(500, "Internal error", {}, ERRORS.INTERNAL_ERROR.code));
}

const REASONS: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests", 503: "Service Unavailable" };

/** The same refusal on a socket whose upgrade is refused (no response object yet); the socket closes after it. */
export function refuseUpgrade(socket: Duplex, error: DoorError): void {
  if (socket.destroyed) return;
  const text = errorBody(error);
  const headers = { ...HEADERS, "Content-Length": String(Buffer.byteLength(text)), ...error.headers, Connection: "close" };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.end(`HTTP/1.1 ${error.status} ${REASONS[error.status] ?? "Error"}\r\n${lines.join("")}\r\n${text}`);
}
