import { randomBytes } from "node:crypto";
import { JSONRPCClient } from "json-rpc-2.0";
import { decodeBinaryFrame } from "../protocol/binary-frame.js";
import type { PrincipalRef, TransportKind } from "../protocol/roles.js";
import { type ClientMemory, HOME_GROUP, type MemoryHolder } from "./budget.js";
import { type ConnectionHandle, DRAINED_BYTES, HOME_PRINCIPAL, type ProjectRef } from "./connection-context.js";
import type { ConnectionOptions } from "./connection-options.js";
import { rpcError, SpoolError } from "./errors.js";
import { isResponseLike, valueSize } from "./incoming.js";
import { OrderedCalls } from "./ordered-calls.js";
import { OutputWaiters } from "./output-waiters.js";
import type { OutgoingReply } from "./reply-bytes.js";
import { RequestQueue, TurnScheduler } from "./scheduler.js";
import type { Transport } from "./transport.js";

export interface ConnectionHost {
  /**
   * Handles one parsed request or batch; resolves to the serialized reply (or null when there is none).
   * `bytes`: the raw bytes a binary frame carried for the request's bytes field (MethodDefinition.bytes).
   */
  dispatch(message: unknown, connection: ServerConnection, bytes?: Buffer): Promise<string | OutgoingReply | null>;
  connectionClosed(connection: ServerConnection): void;
}

/** How long a connection closed for a limit gets to finish the closing handshake before its socket is dropped. */
const CLOSE_GRACE_MS = 1_000;

/** Unflushed output past which a peer closed for a limit is taken for one that does not read: its socket is dropped at once. */
const STUCK_BYTES = 64 * 1024;

/** Requests of one connection that run at once unless told otherwise. */
export const DEFAULT_CONCURRENCY = 16;

/**
 * The server side of one client connection, over any transport.
 *
 * Everything it holds for the client is counted: output sent and not yet
 * flushed to the peer, messages received and not yet answered, and what
 * others charge to it (chunks queued for its watchers). Output is never
 * buffered without bound: a message that would take what the peer has not
 * read past `maxOutboundBytes` closes the connection (1008) instead, and the
 * server-wide budget closes the connection holding the most (1013) when all
 * of them together hold too much.
 */
export class ServerConnection implements ConnectionHandle, MemoryHolder {
  readonly id = randomBytes(6).toString("hex");
  /** Whose bounds it counts against (MemoryHolder): its principal's share, else its own id. */
  readonly group: string;
  project: ProjectRef | null = null;
  clientInfo: { name: string; version: string } | null = null;
  /** How it reached the server, as the server verified it (never what the client says). */
  readonly via: TransportKind;
  /** Who it acts as; `initialize` may lower its role (never raise it). */
  principal: PrincipalRef;
  readonly state = new Map<string | symbol, unknown>();
  /** Requests received from this connection: FIFO, a bounded number running at once. */
  readonly requests: RequestQueue;
  /** Ordered calls received and not yet answered (the RPC host counts them against `maxUnackedChunks`). */
  orderedPending = 0;
  readonly maxOutboundBytes: number;
  readonly #abort = new AbortController();
  readonly #closeListeners: (() => void)[] = [];
  readonly #client: JSONRPCClient;
  readonly #memory: ClientMemory | undefined;
  readonly #warn: (message: string) => void;
  #closed = false;
  #closing = false;
  /** No longer counted against the server's budget (closed). */
  #detached = false;
  /** Bytes sent whose write has not completed. */
  #queued = 0;
  /** Everything this connection holds, `#queued` included. */
  #held = 0;
  /** Who waits for the peer to read (whenDrained, whenFlushed). */
  readonly #waiters = new OutputWaiters();
  /** Running totals of bytes handed to the transport and of bytes whose write completed (the read cap's flush marks). */
  #sentBytes = 0;
  #flushedBytes = 0;
  #terminateTimer: NodeJS.Timeout | null = null;
  readonly #maxRequests: number;
  /** Reading is paused: too many requests of this connection are unanswered. */
  #readPaused = false;
  /** A write failed: the socket is gone and its close event is on its way. */
  #gone = false;

  constructor(
    private readonly transport: Transport,
    private readonly host: ConnectionHost,
    options: ConnectionOptions = {},
  ) {
    this.maxOutboundBytes = options.maxOutboundBytes ?? Number.POSITIVE_INFINITY;
    this.principal = options.principal ?? HOME_PRINCIPAL;
    this.via = options.via ?? "in-process";
    // In-process connections with no principal act as the home's admin: the home's group.
    this.group = options.share ?? (options.principal ? this.id : HOME_GROUP);
    this.#memory = options.memory;
    this.#memory?.add(this);
    this.#warn = options.warn ?? (() => undefined);
    // A peer that has not read its earlier replies gets no new ones made for it until it does.
    const drained = () => (this.bufferedAmount() > DRAINED_BYTES ? this.whenDrained(DRAINED_BYTES) : null);
    this.requests = new RequestQueue(options.scheduler ?? new TurnScheduler(), options.concurrency ?? DEFAULT_CONCURRENCY, drained, () => this.#flow());
    this.#maxRequests = options.maxRequestsInFlight ?? Number.POSITIVE_INFINITY;
    this.#client = new JSONRPCClient((request) => {
      this.#send(request);
    });
    transport.onMessage((text) => void this.#receive(text));
    // In process (the embedded runner): messages come as values, their chunks as Buffers, and are answered the same way.
    transport.onValue?.((message) => void this.#receive(message, true));
    // Over WebSocket: binary frames, a request with its chunk as raw bytes (src/protocol/binary-frame.ts).
    transport.onBinary?.((frame) => void this.#receiveFrame(frame));
    transport.onClose(() => this.#handleClose());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Closed for a limit and on its way out: nothing more is sent or run. */
  get closing(): boolean {
    return this.#closing;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Bytes this connection holds now (see the class comment). */
  get held(): number {
    return this.#held;
  }

  readonly #ordered = new OrderedCalls();

  /** Runs `work` after the earlier ordered calls of this connection that it conflicts with (see OrderedCalls.run). */
  runOrdered<T>(key: string, work: (admit: () => void) => Promise<T>, pipelined = false): Promise<T> {
    return this.#ordered.run(key, work, pipelined);
  }

  join(project: ProjectRef, clientInfo: { name: string; version: string } | null): void {
    if (this.project) throw new SpoolError("ALREADY_INITIALIZED", `This connection is already initialized for project "${this.project.name}"`);
    this.project = project;
    this.clientInfo = clientInfo;
  }

  notify(method: string, params: unknown): void {
    this.#send({ jsonrpc: "2.0", method, params });
  }

  /** `notify` as a function of its own (a handler's `ctx.notify`), made once per connection. */
  readonly notifier = (method: string, params: unknown): void => this.notify(method, params);

  request(method: string, params: unknown, timeoutMs?: number): Promise<unknown> {
    if (this.#closed || this.#closing) return Promise.reject(new Error("connection closed"));
    const requester = timeoutMs ? this.#client.timeout(timeoutMs) : this.#client;
    return Promise.resolve(requester.request(method, params as Record<string, unknown>));
  }

  /** Bytes sent to the peer and not yet flushed to it. */
  bufferedAmount(): number {
    return Math.max(this.#queued, this.transport.bufferedAmount());
  }

  /**
   * Resolves true once no more than `below` bytes wait to be flushed to the
   * peer (at once if that is already so), false if the connection closes
   * first. Woken by the writes completing: nothing polls.
   */
  whenDrained(below: number): Promise<boolean> {
    if (this.#closed || this.#closing || this.#gone) return Promise.resolve(false);
    if (this.bufferedAmount() <= below) return Promise.resolve(true);
    return this.#waiters.drained(below);
  }

  /** Bytes handed to the transport so far (a running total). */
  get sentBytes(): number {
    return this.#sentBytes;
  }

  /** Bytes whose write to the socket completed so far (a running total). */
  get flushedBytes(): number {
    return this.#flushedBytes;
  }

  /** Resolves true once the first `mark` bytes ever sent have been written to the socket, false if the connection goes first. */
  whenFlushed(mark: number): Promise<boolean> {
    if (this.#flushedBytes >= mark) return Promise.resolve(true);
    if (this.#closed || this.#gone) return Promise.resolve(false);
    return this.#waiters.flushed(mark);
  }

  /** Runs server-side work for this connection in its turn (see ConnectionHandle.schedule). */
  schedule<T>(kind: string, work: () => Promise<T>): Promise<T | undefined> {
    return this.requests.run(kind, work, undefined);
  }

  /** Sends an already serialized notification (one text for every connection of a project), as JSON text or its UTF-8 bytes. */
  sendSerialized(text: string | Buffer): void {
    this.#sendText(text);
  }

  /** Whether something for this connection (its next request, a replay page, re-sent proposals) waits for its peer to read. */
  get waitingForPeer(): boolean {
    return this.#waiters.waiting;
  }

  /** Counts `bytes` (negative: gives them back) held for this connection against the server's budget. */
  hold(bytes: number): void {
    if (this.#detached || bytes === 0) return;
    this.#held += bytes;
    this.#memory?.change(bytes);
  }

  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#closeListeners.push(listener);
  }

  close(code = 1000, reason = ""): void {
    this.transport.close(code, reason);
  }

  /**
   * Closes the connection because it went over a limit: logged with `detail`,
   * WebSocket close `code` with the short `reason`, nothing more sent or run.
   * A peer that does not read would never see the close frame (it queues
   * behind what is unread) nor answer the handshake, so its socket is dropped
   * at once; any other gets a short grace to finish the handshake.
   */
  closeFor(code: number, reason: string, detail: string): void {
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    this.#warn(`closing connection ${this.id}${this.clientInfo ? ` (${this.clientInfo.name})` : ""} with ${code}: ${detail}`);
    this.requests.close();
    this.#waiters.wakeDrained(null);
    const stuck = this.bufferedAmount() > STUCK_BYTES;
    try {
      this.transport.close(code, reason.slice(0, 120));
    } catch {
      // Already going away.
    }
    // What it holds is let go when the socket is gone (the close event), so that is made soon: at once when
    // the peer has not read what it was sent (the close frame would only queue behind it), else after a grace.
    if (stuck) this.transport.terminate?.();
    else {
      this.#terminateTimer = setTimeout(() => this.transport.terminate?.(), CLOSE_GRACE_MS);
      this.#terminateTimer.unref();
    }
  }

  /** The server's budget is short and this connection holds the most. */
  evict(detail: string): void {
    this.closeFor(1013, "server memory budget reached; try again later", detail);
  }

  async #receive(received: string | object, asValue = false): Promise<void> {
    // The message is held (as text, then parsed; or as the value it came as) until it is answered.
    const size = typeof received === "string" ? received.length : valueSize(received);
    this.hold(size);
    try {
      let message: unknown = received;
      if (typeof received === "string") {
        try {
          message = JSON.parse(received);
        } catch {
          this.#send({ jsonrpc: "2.0", id: null, error: rpcError("PARSE_ERROR", "Parse error: the message is not valid JSON") });
          return;
        }
      }
      if (isResponseLike(message)) {
        this.#client.receive(message);
        return;
      }
      const replied = this.host.dispatch(message, this);
      this.#flow();
      const reply = await replied;
      if (reply !== null) this.#sendReply(reply, asValue);
    } finally {
      this.hold(-size);
    }
  }

  /** A binary frame: its header is the request, its bytes fill the method's bytes field; answered with JSON text. */
  async #receiveFrame(frame: Uint8Array): Promise<void> {
    this.hold(frame.byteLength);
    try {
      const decoded = decodeBinaryFrame(frame);
      if (!decoded.ok) {
        const code = decoded.id === null ? "PARSE_ERROR" : "INVALID_REQUEST";
        this.#send({ jsonrpc: "2.0", id: decoded.id, error: rpcError(code, `Bad binary frame: ${decoded.reason}`) });
        return;
      }
      const bytes = Buffer.isBuffer(decoded.bytes) ? decoded.bytes : Buffer.from(decoded.bytes.buffer, decoded.bytes.byteOffset, decoded.bytes.byteLength);
      const replied = this.host.dispatch(decoded.request, this, bytes);
      this.#flow();
      const reply = await replied;
      if (reply !== null) this.#sendReply(reply);
    } finally {
      this.hold(-frame.byteLength);
    }
  }

  #send(message: unknown): void {
    if (this.#closed || this.#closing || this.#gone) return;
    let text: string;
    try {
      text = JSON.stringify(message);
    } catch {
      return;
    }
    this.#sendText(text);
  }

  /** A reply: JSON text, or bytes with work to run once they are handed over (or dropped). */
  #sendReply(reply: string | OutgoingReply, asValue = false): void {
    if (typeof reply === "string") {
      this.#sendText(reply, asValue);
      return;
    }
    this.#sendText(reply.data, asValue);
    reply.done();
  }

  /** Sends one message (JSON text, or its UTF-8 bytes) unless that would take the output the peer has not read past the budget. */
  #sendText(text: string | Buffer, asValue = false): void {
    if (this.#closed || this.#closing || this.#gone) return;
    const size = typeof text === "string" ? Buffer.byteLength(text) : text.length;
    const waiting = this.bufferedAmount();
    if (waiting > 0 && waiting + size > this.maxOutboundBytes) {
      this.closeFor(
        1008,
        "outbound budget exceeded: the client does not read its messages",
        `${waiting} bytes not yet read by the peer and ${size} more to send (limits.maxOutboundBytes ${this.maxOutboundBytes})`,
      );
      return;
    }
    this.#queued += size;
    this.#sentBytes += size;
    this.hold(size);
    // Counting it may have made the server close this connection to stay in its budget.
    if (this.#closing) return;
    let flushed = false;
    try {
      const done = (error?: Error) => {
        if (flushed) return;
        flushed = true;
        this.#queued -= size;
        this.#flushedBytes += size;
        this.hold(-size);
        this.#waiters.wakeFlushed(this.#flushedBytes, false);
        // A write that failed means the socket is gone (its close event follows): nothing more goes out.
        if (error) this.#broken();
        else if (this.#waiters.drainWaiting) this.#waiters.wakeDrained(this.bufferedAmount());
      };
      // A reply to a message that came as a value goes back the same way (the value is its JSON text).
      if (typeof text !== "string") {
        // Bytes go out as they are where the transport takes them (WebSocket: one text frame, no copy).
        if (this.transport.sendUtf8 && !(asValue && this.transport.sendValue)) this.transport.sendUtf8(text, done);
        else if (asValue && this.transport.sendValue) this.transport.sendValue(text.toString("utf8"), done);
        else this.transport.send(text.toString("utf8"), done);
      } else if (asValue && this.transport.sendValue) this.transport.sendValue(text, done);
      else this.transport.send(text, done);
    } catch {
      // The socket went away between our check and the write; the close handler cleans up.
    }
  }

  /**
   * Stops reading from the peer while `maxRequestsInFlight` of its requests
   * are unanswered, and reads on once half of them are: a client that
   * pipelines faster than it is served waits in TCP instead of growing the
   * queue.
   */
  #flow(): void {
    if (!this.transport.pause || this.#closed) return;
    const waiting = this.requests.size;
    if (!this.#readPaused && waiting >= this.#maxRequests) {
      this.#readPaused = true;
      this.transport.pause();
    } else if (this.#readPaused && waiting <= this.#maxRequests / 2) {
      this.#readPaused = false;
      this.transport.resume?.();
    }
  }

  /** Whether reading stops (rather than requests being refused) when too many are unanswered. */
  get canPauseReading(): boolean {
    return this.transport.pause !== undefined;
  }

  #broken(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.requests.close();
    this.#waiters.wakeDrained(null);
    this.#waiters.wakeFlushed(this.#flushedBytes, true);
  }

  /** Stops counting against the server's budget: what this connection held is let go with it. */
  #detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#memory?.change(-this.#held);
    this.#held = 0;
    this.#memory?.delete(this);
  }

  #handleClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#terminateTimer) clearTimeout(this.#terminateTimer);
    this.#detach();
    this.requests.close();
    this.#waiters.wakeDrained(null);
    this.#waiters.wakeFlushed(this.#flushedBytes, true);
    this.#abort.abort(new Error("connection closed"));
    this.#client.rejectAllPendingRequests("connection closed");
    for (const listener of this.#closeListeners.splice(0)) {
      try {
        listener();
      } catch {
        // A plugin's cleanup failing must not stop the others.
      }
    }
    this.host.connectionClosed(this);
  }
}
