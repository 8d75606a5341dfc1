// biome-ignore-all lint/suspicious/noExplicitAny: a server → client request's params are whatever the server sent; each handler reads its own
import { SpoolRpcError } from "./errors.js";

/** Answers one server → client request of a method (`client.handle`). */
export type RequestHandler = (params: any) => unknown;

/**
 * The reply to a server → client request: the handler's result, its SpoolRpcError's code (UNSUPPORTED,
 * STREAM_CLOSED, …), INTERNAL_ERROR for anything else it throws, METHOD_NOT_FOUND when no handler answers `method`.
 */
export async function answer(handler: RequestHandler | undefined, id: string | number, method: string, params: unknown): Promise<object> {
  if (!handler) {
    return { jsonrpc: "2.0", id, error: { code: -32601, message: `Method not found: ${method}`, data: { code: "METHOD_NOT_FOUND" } } };
  }
  try {
    return { jsonrpc: "2.0", id, result: (await handler(params)) ?? null };
  } catch (error) {
    // A handler refuses with a SpoolRpcError to send its code; anything else is an internal error.
    return {
      jsonrpc: "2.0",
      id,
      error:
        error instanceof SpoolRpcError
          ? { code: error.code, message: error.message, data: error.data ?? {} }
          : { code: -32603, message: error instanceof Error ? error.message : String(error), data: { code: "INTERNAL_ERROR" } },
    };
  }
}
