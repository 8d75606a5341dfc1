import { HOME_PRINCIPAL_NAME, type PrincipalRef, type TransportKind } from "../protocol/roles.js";

/** Who the home's token file (and an in-process connection) acts as. */
export const HOME_PRINCIPAL: PrincipalRef = Object.freeze({ name: HOME_PRINCIPAL_NAME, role: "admin", projects: null });

/**
 * Output a connection may have waiting to be flushed before more is made for
 * it: its next request does not start, a replay does not read its next chunk,
 * re-sent proposals wait, until the peer has read down to this. Live
 * notifications still go out, up to `maxOutboundBytes`.
 */
export const DRAINED_BYTES = 1024 * 1024;

/** A project as a connection sees it after `initialize`. */
export interface ProjectRef {
  id: number;
  name: string;
  root: string;
}

/** What a handler knows about the connection that called it. */
export interface ConnectionContext {
  connection: ConnectionHandle;
  /** The initialized project; methods with access "none" may see null. */
  project: ProjectRef;
  /** Sends a notification to this connection only. */
  notify(method: string, params: unknown): void;
}

export interface ConnectionHandle {
  readonly id: string;
  readonly project: ProjectRef | null;
  /** The client it claims to be (initialize's clientInfo): a claim, never verified. */
  readonly clientInfo: { name: string; version: string } | null;
  /** How it reached the server, as the server verified it (the audit trail records it beside the claim). */
  readonly via: TransportKind;
  /** Who it acts as: its credential's principal (name, role, scope); `initialize` may lower the role. */
  principal: PrincipalRef;
  /** Per-connection state owned by plugins, keyed by plugin-chosen symbols or names. */
  readonly state: Map<string | symbol, unknown>;
  /** Binds the connection to a project (what `initialize` does); a second call throws. */
  join(project: ProjectRef, clientInfo: { name: string; version: string } | null): void;
  notify(method: string, params: unknown): void;
  /** Sends a notification already serialized as JSON text, or as that text's UTF-8 bytes (one text made once for many connections, or many watchers). */
  sendSerialized?(text: string | Buffer): void;
  /** Server → client request (used by runners); rejects when the connection closes. */
  request(method: string, params: unknown, timeoutMs?: number): Promise<unknown>;
  /** Bytes sent to the peer and not yet flushed to it. */
  bufferedAmount(): number;
  /** Resolves true once at most `below` bytes wait to be flushed (false if the connection closes first); woken by completed writes, never by polling. */
  whenDrained?(below: number): Promise<boolean>;
  /** Bytes handed to the transport so far, a running total: with `whenFlushed`, tells when a reply sent has left the process (the read cap). */
  readonly sentBytes?: number;
  /** Resolves true once the first `mark` bytes ever sent have been written to the socket (false if the connection goes first). */
  whenFlushed?(mark: number): Promise<boolean>;
  /** Bytes whose write to the socket completed so far, a running total (whether its peer reads at all). */
  readonly flushedBytes?: number;
  /** Closes it for the server's sake (1013, try again later), logged with `detail`. */
  evict?(detail: string): void;
  /**
   * Runs server-side work for this connection (a replay page, a page of
   * re-sent proposals) in its turn: in the connection's queue with its
   * requests, once its peer has read down to DRAINED_BYTES, sharing the
   * event loop fairly with every other connection. Resolves with the work's
   * result, or undefined if the connection closed before it started.
   */
  schedule?<T>(kind: string, work: () => Promise<T>): Promise<T | undefined>;
  /** Counts bytes held for this connection (e.g. chunks queued for its watchers) against the server's client-memory budget; negative gives them back. */
  hold?(bytes: number): void;
  /** The output budget: a message that would leave more than this unflushed closes the connection. */
  readonly maxOutboundBytes?: number;
  onClose(listener: () => void): void;
  close(code?: number, reason?: string): void;
  readonly closed: boolean;
}
