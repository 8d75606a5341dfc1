/**
 * How servers that share one database talk: announcements (a notification
 * for a project's connections, a control for a producer's owner, a reply, a
 * run to drive) and chunk marks (entry, seq: the bytes are read from the
 * chunks table). With SQLite there is one server, and the bus has nobody to
 * talk to.
 */

export type BusMessage =
  /** A notification for every connection of a project, on every server. */
  | { t: "notify"; project: number; method: string; params: unknown }
  /** A control (input, eof, signal, resize) for the producer's owner, which is a connection of server `to`. */
  | { t: "control"; to: number; from: number; id: number; producer: number; method: string; params: Record<string, unknown> }
  /** Accept a proposal for a runner attached to server `to` (the accepting client is on server `from`). */
  | {
      t: "accept";
      to: number;
      from: number;
      id: number;
      project: { id: number; name: string; root: string };
      target: { run: string; path: string };
      options: { runner?: string | undefined; reason?: string | undefined; always?: string | undefined; resolver: unknown; resolvedBy: string };
    }
  /** The answer to a control or an accept: its result, or the error it met. */
  | { t: "reply"; to: number; id: number; result?: unknown; error?: { code?: unknown; message: string; data?: unknown } }
  /** Server `to` holds the run's lease: take its next steps. */
  | { t: "kick"; to: number; run: number }
  /** The run was aborted: whichever server is calling its model stops. */
  | { t: "interrupt"; run: number; reason: string }
  /** Server `server` owns the producer now (a claim, a runner that came back there): the others let go of it. */
  | { t: "owned"; producer: number; server: number }
  /**
   * The principal of that name was revoked: every server closes its connections and notes the name (a proposal of it
   * stored late withdraws itself). Sent again with `withdrawn` once the revoking server withdrew its waiting proposals:
   * each server then withdraws those its handlers stored before it noted the name.
   */
  | { t: "revoked"; name: string; withdrawn?: true }
  /** These paired devices were unpaired: every server closes their pages. */
  | { t: "devices-revoked"; ids: string[] }
  /** The project of that id was removed: every server closes the connections joined to it. */
  | { t: "project-deleted"; project: number }
  /** An accepted command waits in the project's queue `pool`: each server's free runners of that pool look at it. */
  | { t: "queued"; project: number; pool: string }
  /** spool runners drain (or its undoing) for a runner attached to another server: the one holding it applies it. */
  | { t: "drain"; project: number; name: string; draining: boolean };

export interface BusHandlers {
  message(message: BusMessage, from: number): Promise<void>;
  /** Chunks up to `seq` of entry `entryId` were committed by another server. */
  chunk(entryId: number, seq: number): Promise<void>;
  /** These servers stopped (their database session ended). */
  gone(servers: number[]): Promise<void>;
}

export interface Bus {
  /** This server's id (its row in `servers`). */
  readonly serverId: number;
  /** Whether other servers may share the database. */
  readonly shared: boolean;
  /** The servers alive now, this one included, as the database sees them. */
  alive(): Promise<number[]>;
  /** Sends a message to the other servers, after every chunk mark and message sent before it. */
  publish(message: BusMessage): void;
  /** Tells the other servers a chunk was committed (marks are coalesced per entry). */
  chunk(entryId: number, seq: number): void;
  start(handlers: BusHandlers): Promise<void>;
  close(): Promise<void>;
}

/** The bus of a server that is alone on its database (SQLite): nobody else to tell. */
export class SoloBus implements Bus {
  readonly shared = false;
  constructor(readonly serverId: number) {}
  async alive(): Promise<number[]> {
    return [this.serverId];
  }
  publish(): void {}
  chunk(): void {}
  async start(): Promise<void> {}
  async close(): Promise<void> {}
}
