// The error catalogue as data: each error's name (sent as `data.code`), its JSON-RPC code, its area and
// what it means. src/rpc/errors.ts throws and maps them; the docs and the clients read them from here.

/**
 * The one error catalogue. Every error Spool sends is listed here with its
 * JSON-RPC code and a stable string in `error.data.code`; SPEC.md's error
 * table is generated from this object.
 */
export const ERRORS = {
  // JSON-RPC 2.0 standard codes
  PARSE_ERROR: { code: -32700, area: "protocol", summary: "The message is not valid JSON." },
  INVALID_REQUEST: { code: -32600, area: "protocol", summary: "The message is not a JSON-RPC 2.0 request (or is an empty batch)." },
  METHOD_NOT_FOUND: { code: -32601, area: "protocol", summary: "No method of that name is registered." },
  INVALID_PARAMS: {
    code: -32602,
    area: "protocol",
    summary: "Params fail the method's schema: missing, unknown or mistyped fields; `data.issues` lists each offending path.",
  },
  INTERNAL_ERROR: { code: -32603, area: "protocol", summary: "The server failed; the cause is logged on the server, never sent." },
  // Session and access
  UNAUTHORIZED: { code: -32001, area: "session", summary: "Missing or wrong token (also HTTP 401 at the WebSocket upgrade)." },
  NOT_INITIALIZED: { code: -32002, area: "session", summary: "The method needs `initialize` first." },
  ALREADY_INITIALIZED: { code: -32003, area: "session", summary: "`initialize` was already called on this connection." },
  FORBIDDEN: {
    code: -32005,
    area: "session",
    summary:
      "The caller's credential may not do this: its role is below the one the method needs (`data.role`, what it holds: `data.held`), the project or run is outside its scope (`data.project`, `data.run`), or a setting's rule leaves it out (`data.rule`: `sandboxFullAcceptors` for an accept of a command without a sandbox, with `data.acceptors`). Nothing changed.",
  },
  UNSUPPORTED: { code: -32004, area: "session", summary: "The operation or protocol version is not supported by this server." },
  // Resources
  NOT_FOUND: { code: -32010, area: "resource", summary: "The run, entry, channel or subscription does not exist in the caller's project." },
  CONFLICT: {
    code: -32011,
    area: "resource",
    summary: "The target is in the wrong state for this operation, a unique name is taken, or a repeated `seq` carries other bytes than the stored chunk.",
  },
  NOT_OWNER: {
    code: -32012,
    area: "resource",
    summary:
      'Only the producer\'s owner (its runner, or the connection that accepted it with runner "self") may write its output or outcome; or a resume token does not match.',
  },
  FACTS_CHANGED: {
    code: -32013,
    area: "resource",
    summary:
      "The proposal's facts changed before the decision (its runner's server stopped and another server's runner takes it, or the runner named now makes another claim: another principal's runner took its name, other modes or network; `data.runnerServer`, `data.factsRevision`); nothing ran: decide again on the facts now shown.",
  },
  // Streams
  STREAM_CLOSED: { code: -32020, area: "stream", summary: "The channel has already finished; nothing more can be appended." },
  SEQ_GAP: { code: -32021, area: "stream", summary: "`seq` skips ahead of the next expected sequence number (`data.expected`)." },
  PAYLOAD_TOO_LARGE: { code: -32022, area: "stream", summary: "A chunk, message or read is over its configured limit (`data.limit`)." },
  // Runners and limits
  NO_RUNNER: { code: -32030, area: "runner", summary: "No runner is available to execute an accepted proposal." },
  LIMIT_EXCEEDED: { code: -32031, area: "limits", summary: "A configured resource limit (subscriptions, connections, …) is reached." },
  VIEW_HOLDS_SECRET: {
    code: -32032,
    area: "runner",
    summary:
      "A sandboxed command's view (its project root or a configured `sandboxView` path) would hold a known credential: the server's home, token file or database (`data.secret`, through `data.path`). Nothing was proposed or run: keep them apart.",
  },
  // Storage
  STORAGE_FULL: {
    code: -32040,
    area: "storage",
    summary:
      "The disk holding the database is full: the write was rolled back and nothing of it is stored. Retriable (`data.retriable`): the same call succeeds once space is freed; reads keep working.",
  },
} as const;

export type ErrorName = keyof typeof ERRORS;

/**
 * The store found no room for a write (a full disk, or the database's size limit): it was rolled back and nothing
 * of it is stored. The store throws it for its driver's codes; the error mapper answers it as STORAGE_FULL.
 */
export class StorageFull extends Error {
  override readonly name = "StorageFull";
  constructor(override readonly cause: unknown) {
    super("storage full: the database or the disk holding it has no room for this write");
  }
}
