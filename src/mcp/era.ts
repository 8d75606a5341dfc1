import type { IncomingMessage } from "node:http";
import { classifyInboundRequest } from "@modelcontextprotocol/server";
import { idOrNull } from "./modern-wire.js";

/*
 * Which revision a POST to /mcp speaks (issue 47), decided by the v2 SDK's own classifier
 * (`classifyInboundRequest` of @modelcontextprotocol/server: pure, it reads the parsed body and the MCP headers,
 * never the request, and never throws), so the routing follows the SDK's reading of the spec's rules, not one
 * of Spool's:
 * - legacy: 2025-11-25 traffic (initialize, a request or notification without the per-request `_meta`
 *   envelope, a posted response, a batch of those): a session's (http.ts);
 * - modern: a 2026-07-28 request (its `_meta` names a protocol version) or notification: modern.ts, whose own
 *   checks (headers present, the Mcp-Name, the version served, capabilities) then apply;
 * - refused: what the SDK rejects before either, answered with its HTTP status, JSON-RPC code, message and
 *   data: a batch holding a 2026-07-28 element (400, -32600), an MCP-Protocol-Version of 2026-07-28 or later
 *   without the envelope (400, -32602), headers that disagree with the body (MCP-Protocol-Version against the
 *   envelope's version, Mcp-Method against the method, a modern header on initialize: 400, -32020), an invalid
 *   envelope (400, -32602), a body that is no JSON-RPC message (400, -32600).
 */

export type Era =
  | { kind: "legacy"; initialize: boolean }
  | { kind: "modern" }
  | {
      kind: "refused";
      status: number;
      code: number;
      message: string;
      data?: unknown;
      /** The request's id when it has one to echo (JSON-RPC: null when the request or its id could not be read). */
      id: string | number | null;
    };

/** A header's value as one string (Node joins repeated ones, but its type allows a list). */
function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

/** The id an error answer echoes, as the SDK does: a request's (an object with a method) string or number id, else null. */
function echoable(body: unknown): string | number | null {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return null;
  const { method, id } = body as { method?: unknown; id?: unknown };
  if (typeof method !== "string") return null;
  return idOrNull(id);
}

/** The era of a POST with this parsed body. */
export function eraOf(request: Pick<IncomingMessage, "headers">, body: unknown): Era {
  const version = one(request.headers["mcp-protocol-version"]);
  const method = one(request.headers["mcp-method"]);
  const name = one(request.headers["mcp-name"]);
  const outcome = classifyInboundRequest({
    httpMethod: "POST",
    body,
    ...(version !== undefined ? { protocolVersionHeader: version } : {}),
    ...(method !== undefined ? { mcpMethodHeader: method } : {}),
    ...(name !== undefined ? { mcpNameHeader: name } : {}),
  });
  switch (outcome.kind) {
    case "legacy":
      return { kind: "legacy", initialize: outcome.reason === "initialize" };
    case "modern":
      return { kind: "modern" };
    case "reject":
      return {
        kind: "refused",
        status: outcome.httpStatus,
        code: outcome.code,
        message: outcome.message,
        ...(outcome.data !== undefined ? { data: outcome.data } : {}),
        id: echoable(body),
      };
  }
}
