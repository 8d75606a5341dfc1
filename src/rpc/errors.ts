export { ERRORS, type ErrorName } from "../protocol/errors.js";

import { ERRORS, type ErrorName, StorageFull } from "../protocol/errors.js";
import type { Role } from "../protocol/roles.js";

const SPOOL_ERROR = Symbol.for("spool.SpoolError");

/** An error with a catalogue name; thrown by handlers, mapped to a JSON-RPC error response. */
export class SpoolError extends Error {
  /**
   * A plugin may import another copy of this module (spool/plugin's build, while the server runs
   * from source): `instanceof SpoolError` recognizes an error from any copy. (So it has no subclasses.)
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as { [SPOOL_ERROR]?: unknown })[SPOOL_ERROR] === true;
  }

  readonly [SPOOL_ERROR] = true;
  override readonly name = "SpoolError";
  constructor(
    readonly errorName: ErrorName,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  get rpcCode(): number {
    return ERRORS[this.errorName].code;
  }
}

export const notFound = (what: string, details: Record<string, unknown> = {}) => new SpoolError("NOT_FOUND", `${what} not found`, details);

/** The refusal of a call the caller's role is below: it names the role needed (`data.role`), and nothing has run. */
export const forbidden = (method: string, role: Role, held: Role) =>
  new SpoolError("FORBIDDEN", `${method} needs the ${role} role; this credential acts as ${held}`, { role, held, method });

export const conflict = (message: string, details: Record<string, unknown> = {}) => new SpoolError("CONFLICT", message, details);

export interface RpcErrorObject {
  code: number;
  message: string;
  data: { code: ErrorName } & Record<string, unknown>;
}

export function rpcError(name: ErrorName, message: string, details: Record<string, unknown> = {}): RpcErrorObject {
  return { code: ERRORS[name].code, message, data: { ...details, code: name } };
}

const BY_CODE = new Map<number, ErrorName>((Object.entries(ERRORS) as [ErrorName, { code: number }][]).map(([name, e]) => [e.code, name]));

export function errorNameForCode(code: number): ErrorName | undefined {
  return BY_CODE.get(code);
}

/**
 * Turns anything a handler threw into the error object sent on the wire.
 * Unknown errors become INTERNAL_ERROR; their message and stack go to `log`, never to the peer.
 */
export function toRpcError(error: unknown, log: (message: string, error: unknown) => void): RpcErrorObject {
  if (error instanceof SpoolError) return rpcError(error.errorName, error.message, error.details);
  // The store turns its driver's "no room" codes into StorageFull (src/store/errors.ts) for every write it makes.
  if (error instanceof StorageFull) {
    log("storage full: a write was refused", error);
    return rpcError("STORAGE_FULL", "Storage full: nothing was written; retry once space is freed", { retriable: true });
  }
  log("internal error in handler", error);
  return rpcError("INTERNAL_ERROR", "Internal error");
}
