import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  classifyInboundRequest,
  PROTOCOL_VERSION_META_KEY,
  ProtocolErrorCode,
  SERVER_INFO_META_KEY,
  SUBSCRIPTION_ID_META_KEY,
  UnsupportedProtocolVersionError,
} from "@modelcontextprotocol/server";

/*
 * MCP 2026-07-28 on the wire, what Spool reads of it itself (the v2 SDK checks the rest): the revisions' names,
 * the `_meta` keys every request carries, the client capabilities Spool's answers depend on, and the error codes
 * of what Spool refuses before the SDK sees a request.
 */

/** The revision served without sessions (2025-11-25's, served with sessions on the same URL: src/mcp/sessions/). */
export const MODERN_VERSION = "2026-07-28";

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

/** The JSON-RPC error codes Spool answers with itself: the v2 SDK's (ProtocolErrorCode), and the header mismatch it has no name for. */
export const CODES = {
  parse: ProtocolErrorCode.ParseError,
  invalidRequest: ProtocolErrorCode.InvalidRequest,
  invalidParams: ProtocolErrorCode.InvalidParams,
  internal: ProtocolErrorCode.InternalError,
  headerMismatch: -32020,
} as const;

/** The id an error answer echoes: a message's string or number id, else null (JSON-RPC's id when it could not be read). */
export function idOrNull(id: unknown): string | number | null {
  return typeof id === "string" || typeof id === "number" ? id : null;
}

/** The client a request names in its `_meta` (clientInfo), as Spool keeps it. */
export type ClientInfo = { name: string; version: string } | null;

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

/** Whether a message (on stdio; /mcp asks the SDK's isLegacyRequest) belongs to this revision: its `_meta` names a protocol version. */
export function isModern(body: unknown): boolean {
  const meta = (body as { params?: { _meta?: Record<string, unknown> } } | null)?.params?._meta;
  return !!meta && typeof meta === "object" && META.version in meta;
}

/**
 * Why a request of this revision (on stdio: its `_meta` names a version) is refused before anything serves it, as
 * the v2 SDK refuses it at /mcp (its classifier, then a version it does not serve: -32022 naming the supported ones);
 * null when it is served. serveStdio checks this only until it pins the revision: after, it would serve a request
 * naming any version as 2026-07-28's.
 */
export function refusedEnvelope(body: unknown): { code: number; message: string; data?: unknown } | null {
  const route = classifyInboundRequest({ httpMethod: "POST", body });
  if (route.kind === "reject") return { code: route.code, message: route.message, ...(route.data !== undefined ? { data: route.data } : {}) };
  // An initialize without a valid claim is the 2025-11-25 handshake: serveStdio answers it (legacy: 'reject').
  if (route.kind === "legacy") return null;
  const requested = route.classification.revision;
  if (requested === MODERN_VERSION) return null;
  const error = new UnsupportedProtocolVersionError({ supported: [MODERN_VERSION], requested: requested ?? "unknown" });
  return { code: error.code, message: error.message, data: error.data };
}

/**
 * A retry's inputResponses as the client sent them, or why they are malformed: an object whose every value is a
 * result object. Checked by each transport before the SDK reads the request: the SDK passes on only the entries it
 * reads as responses, so a malformed answer would read as none, use up the requestState and wait for a decision.
 */
export function malformedInputResponses(params: unknown): string | null {
  if (params === null || typeof params !== "object" || !("inputResponses" in params)) return null;
  const value = (params as { inputResponses: unknown }).inputResponses;
  const ok =
    value !== null &&
    typeof value === "object" &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => v !== null && typeof v === "object" && !Array.isArray(v));
  return ok ? null : "inputResponses is an object: each key of the inputRequests answered, with its result (an object)";
}
