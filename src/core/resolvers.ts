import type { ConnectionHandle } from "../rpc/connection-context.js";
import type { ResolverOut } from "./deps.js";

/** Who a connection is, in words: its principal's name, with its client's name (else its id). */
export const describeCaller = (connection: ConnectionHandle) =>
  `${connection.principal.name} via ${connection.clientInfo?.name ?? `connection ${connection.id}`}`;

/** A client's connection as the resolver of a proposal. */
export const connectionResolver = (connection: ConnectionHandle): ResolverOut => ({
  kind: "connection",
  connectionId: connection.id,
  client: connection.clientInfo?.name ?? null,
  rule: null,
});

/** run/abort as the resolver of the proposals it rejects. */
export const ABORT_RESOLVER: ResolverOut = { kind: "abort", connectionId: null, client: null, rule: null };
