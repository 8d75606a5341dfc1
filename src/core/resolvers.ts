import { HOME_PRINCIPAL_NAME } from "../protocol/roles.js";
import type { ConnectionHandle } from "../rpc/connection-context.js";
import type { ResolverOut } from "./deps.js";

/**
 * Who a connection is, in words: its client's name (else its id), after its principal's name when it acts with a
 * principal's credential (`alice via spool-cli`). The home's token file (the admin of one person's machine) adds
 * no name, as before principals existed.
 */
export const describeCaller = (connection: ConnectionHandle) => {
  const client = connection.clientInfo?.name ?? `connection ${connection.id}`;
  return connection.principal.name === HOME_PRINCIPAL_NAME ? client : `${connection.principal.name} via ${client}`;
};

/** A client's connection as the resolver of a proposal. */
export const connectionResolver = (connection: ConnectionHandle): ResolverOut => ({
  kind: "connection",
  connectionId: connection.id,
  client: connection.clientInfo?.name ?? null,
  rule: null,
});

/** run/abort as the resolver of the proposals it rejects. */
export const ABORT_RESOLVER: ResolverOut = { kind: "abort", connectionId: null, client: null, rule: null };
