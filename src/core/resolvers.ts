import type { ConnectionHandle } from "../rpc/connection-context.js";
import type { ResolverOut } from "./deps.js";

/**
 * Who a connection is, in words: its principal's name, then its client's name (else its id): `alice via spool-cli`.
 * The home's token file is the principal `admin` (HOME_PRINCIPAL_NAME, a name no other credential may take), so
 * every decision and cancellation names a principal, whichever credential made it.
 */
export const describeCaller = (connection: ConnectionHandle) =>
  `${connection.principal.name} via ${connection.clientInfo?.name ?? `connection ${connection.id}`}`;

/** A client's connection as the resolver of a proposal. */
export const connectionResolver = (connection: ConnectionHandle, how: "key" | "flag" = "key"): ResolverOut => ({
  kind: "connection",
  connectionId: connection.id,
  client: connection.clientInfo?.name ?? null,
  rule: null,
  transport: connection.via,
  how,
});

/** run/abort as the resolver of the proposals it rejects. */
export const ABORT_RESOLVER: ResolverOut = { kind: "abort", connectionId: null, client: null, rule: null, how: "abort" };

/** The deadline (decisionTimeoutMs) as the resolver of the proposals nobody decided in time, and the name recorded as who decided. */
export const DEADLINE = "deadline";
export const DEADLINE_RESOLVER: ResolverOut = { kind: "deadline", connectionId: null, client: null, rule: null, how: "deadline" };

/**
 * A revocation as the resolver of the proposals it withdraws (its principal's, still waiting): the revoking connection's
 * client and transport, never its id (no client takes the withdrawal for a decision of its own).
 */
export const revokedResolver = (revoker: ConnectionHandle): ResolverOut => ({
  kind: "revoked",
  connectionId: null,
  client: revoker.clientInfo?.name ?? null,
  rule: null,
  transport: revoker.via,
  how: "revoked",
});

/**
 * A revocation as the resolver of a proposal its principal's handler stored after the revocation read the waiting
 * ones (propose.ts): no revoking connection is at hand, so no client or transport is named; recorded as decided by
 * REVOCATION.
 */
export const LATE_REVOKED_RESOLVER: ResolverOut = { kind: "revoked", connectionId: null, client: null, rule: null, how: "revoked" };
export const REVOCATION = "revocation";

/** The reason a revocation withdraws a proposal with, which the model and every client read. */
export const revokedReason = (principal: string) => `its proposer's credential "${principal}" was revoked, so it was withdrawn; the command did not run`;
