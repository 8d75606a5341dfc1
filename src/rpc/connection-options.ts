import type { PrincipalRef, TransportKind } from "../protocol/roles.js";
import type { ClientMemory } from "./budget.js";
import type { TurnScheduler } from "./scheduler.js";

/** How a server connection is limited and who it acts as. */
export interface ConnectionOptions {
  /** Output not yet flushed to the peer past which the connection is closed (1008) rather than buffered further. */
  maxOutboundBytes?: number;
  /** The server-wide budget this connection's memory counts against. */
  memory?: ClientMemory;
  /** The event loop's slices, shared by every connection. */
  scheduler?: TurnScheduler;
  /** Requests of this connection that run at once. */
  concurrency?: number;
  /** Requests received and not answered past which the connection stops reading (its peer waits in TCP). */
  maxRequestsInFlight?: number;
  /** Where closings for a limit are logged. */
  warn?: (message: string) => void;
  /** Who the connection acts as (its credential's principal); in-process connections act as the home's admin. */
  principal?: PrincipalRef;
  /** How it reached the server, as the server verified it; default: in process. */
  via?: TransportKind;
  /**
   * Whose bounds it counts against (the share of its credential's principal, core/share-key.ts): the server's memory
   * budget takes from the share holding the most first. None: a share of its own.
   */
  share?: string;
}
