import type { JSONRPCResponse } from "json-rpc-2.0";

/** What a connection receives is a response to one of its own requests (not a request or a notification). */
export function isResponseLike(message: unknown): message is JSONRPCResponse {
  if (typeof message !== "object" || message === null || Array.isArray(message)) return false;
  const m = message as Record<string, unknown>;
  return m.jsonrpc === "2.0" && !("method" in m) && ("result" in m || "error" in m);
}

/** What a message received as a value holds, roughly: its Buffers' bytes and its strings' length, one level into params. */
export function valueSize(message: object): number {
  let size = 64;
  const params = (message as { params?: unknown }).params;
  if (typeof params === "object" && params !== null) {
    for (const value of Object.values(params)) {
      if (typeof value === "string") size += value.length;
      else if (value instanceof Uint8Array) size += value.byteLength;
      else size += 16;
    }
  }
  return size;
}
