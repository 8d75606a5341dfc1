import type { IncomingMessage } from "node:http";
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  PROTOCOL_VERSION_META_KEY,
  ProtocolErrorCode,
  SERVER_INFO_META_KEY,
  SUBSCRIPTION_ID_META_KEY,
} from "@modelcontextprotocol/server";

/*
 * MCP 2026-07-28 on the wire (Streamable HTTP without sessions): the `_meta` every request carries, the
 * Mcp-Method / Mcp-Name / MCP-Protocol-Version headers checked against the body, and the revision's errors with
 * the HTTP status each one goes with.
 */

/** The revision served without sessions. */
export const MODERN_VERSION = "2026-07-28";
/** The revision served with sessions (initialize) on the same URL. */
export const SESSION_VERSION = "2025-11-25";

/** The `_meta` keys of this revision, as the v2 SDK names them. */
export const META = {
  version: PROTOCOL_VERSION_META_KEY,
  capabilities: CLIENT_CAPABILITIES_META_KEY,
  client: CLIENT_INFO_META_KEY,
  server: SERVER_INFO_META_KEY,
  subscription: SUBSCRIPTION_ID_META_KEY,
} as const;

/** The tasks extension's name, in clientCapabilities.extensions and the server's capabilities. */
export const TASKS_EXTENSION = "io.modelcontextprotocol/tasks";

/** The JSON-RPC error codes Spool answers with: the v2 SDK's (ProtocolErrorCode), and the header mismatch it has no name for. */
export const CODES = {
  parse: ProtocolErrorCode.ParseError,
  invalidRequest: ProtocolErrorCode.InvalidRequest,
  methodNotFound: ProtocolErrorCode.MethodNotFound,
  invalidParams: ProtocolErrorCode.InvalidParams,
  internal: ProtocolErrorCode.InternalError,
  headerMismatch: -32020,
  missingCapability: ProtocolErrorCode.MissingRequiredClientCapability,
  unsupportedVersion: ProtocolErrorCode.UnsupportedProtocolVersion,
} as const;

/** The id an error answer echoes: a message's string or number id, else null (JSON-RPC's id when it could not be read). */
export function idOrNull(id: unknown): string | number | null {
  return typeof id === "string" || typeof id === "number" ? id : null;
}

/** A JSON-RPC error of this revision, with the HTTP status it is answered with. */
export class ModernError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/** One JSON-RPC request as posted. */
export interface ModernRequest {
  id: string | number | null;
  method: string;
  params: Record<string, unknown>;
  /** Its _meta's client capabilities (required). */
  capabilities: ClientCapabilities;
  /** Its _meta's client identity (optional). */
  client: { name: string; version: string } | null;
}

export interface ClientCapabilities {
  elicitation?: { form?: object; url?: object } | undefined;
  extensions?: Record<string, unknown> | undefined;
  [key: string]: unknown;
}

/** Whether the client said it answers a form elicitation (an empty `elicitation` means form). */
export function elicitsForm(capabilities: ClientCapabilities): boolean {
  const e = capabilities.elicitation;
  if (!e || typeof e !== "object") return false;
  return e.form !== undefined || e.url === undefined;
}

export function declaresTasks(capabilities: ClientCapabilities): boolean {
  const ext = capabilities.extensions;
  return !!ext && typeof ext === "object" && ext[TASKS_EXTENSION] !== undefined && ext[TASKS_EXTENSION] !== null;
}

/** Whether a message (on stdio; /mcp asks era.ts) belongs to this revision: its `_meta` names a protocol version. */
export function isModern(body: unknown): boolean {
  const meta = (body as { params?: { _meta?: Record<string, unknown> } } | null)?.params?._meta;
  return !!meta && typeof meta === "object" && META.version in meta;
}

/** HTTP: MCP-Protocol-Version is there and says what `_meta` says. */
function checkVersionHeader(request: IncomingMessage, version: string): void {
  const versionHeader = header(request, "mcp-protocol-version");
  if (versionHeader === undefined) throw new ModernError(400, CODES.headerMismatch, "Header mismatch: MCP-Protocol-Version is missing");
  if (versionHeader !== version)
    throw new ModernError(400, CODES.headerMismatch, `Header mismatch: MCP-Protocol-Version '${versionHeader}' does not match _meta's '${version}'`);
}

/** HTTP: Mcp-Method (and Mcp-Name, for the methods that name something) say what the body says. */
function checkMethodHeaders(request: IncomingMessage, method: string, params: Record<string, unknown>): void {
  const methodHeader = header(request, "mcp-method");
  if (methodHeader === undefined) throw new ModernError(400, CODES.headerMismatch, "Header mismatch: Mcp-Method is missing");
  if (methodHeader !== method)
    throw new ModernError(400, CODES.headerMismatch, `Header mismatch: Mcp-Method '${methodHeader}' does not match the body's '${method}'`);
  const field = NAMED[method];
  if (!field) return;
  const nameHeader = header(request, "mcp-name");
  if (nameHeader === undefined) throw new ModernError(400, CODES.headerMismatch, `Header mismatch: Mcp-Name is missing (${method} names its ${field})`);
  if (decodeHeader(nameHeader) !== params[field])
    throw new ModernError(400, CODES.headerMismatch, `Header mismatch: Mcp-Name '${nameHeader}' does not match the body's ${field}`);
}

/** The methods whose Mcp-Name header carries a body field, and which field. */
const NAMED: Record<string, string> = {
  "tools/call": "name",
  "resources/read": "uri",
  "prompts/get": "name",
  "tasks/get": "taskId",
  "tasks/update": "taskId",
  "tasks/cancel": "taskId",
};

/** A header value as the spec encodes it: plain visible ASCII, or `=?base64?…?=` (UTF-8). */
function decodeHeader(value: string): string {
  const m = /^=\?base64\?([A-Za-z0-9+/=]*)\?=$/.exec(value);
  if (m) return Buffer.from(m[1]!, "base64").toString("utf8");
  if (!/^[\x20-\x7e\t]*$/.test(value))
    throw new ModernError(400, CODES.headerMismatch, "Header mismatch: a header value has characters outside visible ASCII (encode it =?base64?…?=)");
  return value;
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  if (Array.isArray(value)) throw new ModernError(400, CODES.headerMismatch, `Header mismatch: one ${name} header, please`);
  return value;
}

/**
 * A message checked as one request of this revision: over HTTP (`request`) against its headers too; over stdio
 * everything is in the body. A ModernError says what is wrong.
 */
export function checkRequest(body: unknown, request: IncomingMessage | null): ModernRequest | { notification: string } {
  if (!body || typeof body !== "object" || Array.isArray(body))
    throw new ModernError(400, CODES.invalidRequest, request ? "Send one JSON-RPC request per POST" : "Send one JSON-RPC message per line");
  const message = body as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
  if (message.jsonrpc !== "2.0" || typeof message.method !== "string") throw new ModernError(400, CODES.invalidRequest, "Not a JSON-RPC 2.0 request");
  if (!("id" in message)) return { notification: message.method };
  const id = message.id;
  if (typeof id !== "string" && typeof id !== "number") throw new ModernError(400, CODES.invalidRequest, "A request's id is a string or a number");
  const params = (message.params ?? {}) as Record<string, unknown>;
  if (typeof params !== "object" || Array.isArray(params)) throw new ModernError(400, CODES.invalidParams, "params is an object");
  const meta = (params._meta ?? {}) as Record<string, unknown>;
  const version = meta[META.version];
  if (typeof version !== "string")
    throw new ModernError(400, CODES.invalidParams, `Every request carries _meta "${META.version}" (or starts a ${SESSION_VERSION} session with initialize)`);
  if (request) checkVersionHeader(request, version);
  if (version !== MODERN_VERSION)
    throw new ModernError(400, CODES.unsupportedVersion, `Unsupported protocol version ${version} without ${request ? "a session" : "initialize"}`, {
      supported: [MODERN_VERSION],
      requested: version,
    });
  if (request) checkMethodHeaders(request, message.method, params);
  const capabilities = meta[META.capabilities];
  if (!capabilities || typeof capabilities !== "object" || Array.isArray(capabilities))
    throw new ModernError(400, CODES.invalidParams, `Every request carries _meta "${META.capabilities}" (an object; {} for none)`);
  const info = meta[META.client] as { name?: unknown; version?: unknown } | undefined;
  const client =
    info && typeof info.name === "string" && info.name !== ""
      ? { name: info.name.slice(0, 200), version: typeof info.version === "string" ? info.version.slice(0, 100) : "unknown" }
      : null;
  return { id, method: message.method, params, capabilities: capabilities as ClientCapabilities, client };
}
