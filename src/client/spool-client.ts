// biome-ignore-all lint/suspicious/noExplicitAny: `request` and untyped listeners are the client's deliberate escape hatch for extension methods and tests of bad input
import type { JSONRPCResponse } from "json-rpc-2.0";
import { BINARY_FRAME_VERSION, encodeBinaryFrame } from "../protocol/binary-frame.js";
import type { MethodName, ParamsOf, ResultOf } from "../protocol/methods/index.js";
import type { NotificationName, SpoolNotifications } from "../protocol/notifications.js";
import type { Role } from "../protocol/roles.js";
import { PROTOCOL_VERSION } from "../protocol/version.js";
import type { Transport } from "../rpc/transport.js";
import { abortable } from "./abortable.js";
import { answer, type RequestHandler } from "./answer.js";
import { base64 } from "./base64.js";
import { CallTimeoutError, ConnectionClosedError, SpoolRpcError } from "./errors.js";
import { FramePool } from "./frame-pool.js";
import { tellEach } from "./listeners.js";
import { readLines } from "./read-lines.js";
import { type Resubscribe, type StreamChunk, type StreamWatch, type WatchTarget, watchStream } from "./stream-watch.js";
import type { WebSocketOptions } from "./ws-transport.js";

export { CallTimeoutError, ConnectionClosedError, factsChanged, SpoolRpcError } from "./errors.js";
export type { StreamChunk, StreamWatch, WatchTarget } from "./stream-watch.js";

/**
 * The Node WebSocket transport (the `ws` package, Node's crypto and net), loaded when `connect` or `open`
 * first needs it. Named through a variable so that a bundler building for a browser does not follow it:
 * the web page runs this client over its own transport (browser-transport.ts) and never calls them.
 */
const NODE_TRANSPORT = "./ws-transport.js";
const connectWebSocket = async (url: string, options: WebSocketOptions): Promise<Transport> =>
  ((await import(NODE_TRANSPORT)) as typeof import("./ws-transport.js")).connectWebSocket(url, options);

/** A request waiting for its response. */
interface Pending {
  resolve(result: unknown): void;
  reject(error: unknown): void;
  /** The binary frame the request went in: reusable once the request is answered (the server read all of it). */
  frame?: Uint8Array;
  /** The call's deadline, when it has one. */
  timer?: ReturnType<typeof setTimeout>;
}

/** What a client's calls wait for unless told otherwise: `callTimeoutMs`, none when absent or 0. */
export interface CallOptions {
  signal?: AbortSignal;
  /** This call's deadline in ms (0: none), instead of the client's `callTimeoutMs`. */
  timeoutMs?: number;
}

type Listener<N> = (params: N extends NotificationName ? SpoolNotifications[N] : any) => void;

export interface ReconnectOptions {
  /** Project to initialize into, again after every reconnect (by name, or by `root` alone). */
  project?: string;
  root?: string;
  client?: { name: string; version: string };
  /** The role to act with (at most the credential's), asked at every initialize. */
  role?: Role;
  /** Delays between attempts: doubling from `minMs` up to `maxMs`. */
  minMs?: number;
  maxMs?: number;
}

/**
 * A typed JSON-RPC client for Spool over any transport: `call` with the
 * method's params and result types, typed notifications, server → client
 * requests (`handle`), `AbortSignal` on calls, and, when opened with
 * `reconnect`, a connection that comes back by itself and resumes its stream
 * watches from their last seq.
 */
export class SpoolClient {
  /** Requests sent and not answered, by id. */
  readonly #pending = new Map<number, Pending>();
  /** The memory binary frames are written in, reused once their requests are answered. */
  readonly #frames = new FramePool();
  #nextId = 0;
  readonly #listeners = new Map<string, Set<(params: any) => void>>();
  readonly #handlers = new Map<string, RequestHandler>();
  readonly #closeListeners: ((code: number, reason: string) => void)[] = [];
  readonly #reconnectListeners: (() => void)[] = [];
  readonly #reconnectFailedListeners: ((error: unknown, attempt: number) => void)[] = [];
  readonly #watches = new Set<Resubscribe>();
  #transport: Transport;
  #closed = false;
  #closing = false;
  #reconnect: { open: () => Promise<Transport>; options: ReconnectOptions } | null = null;
  /** Transports a reconnect opened and gave up on (not joined): their close is not this client's. */
  readonly #abandoned = new WeakSet<Transport>();
  /** A reconnect loop is running. */
  #reconnecting = false;
  /** The transport that closed while the loop was joining with it: tried again, not taken as joined. */
  #closedWhileJoining: Transport | null = null;
  /** The close listeners were told (they are told once). */
  #toldClosed = false;
  /** Per method, the params field a binary frame's bytes fill, as this connection's server advertised at initialize. */
  #binary: Readonly<Record<string, string>> = {};
  /** How long a call waits for its answer before it fails with CallTimeoutError (0: for ever). */
  readonly #callTimeoutMs: number;

  /**
   * `callTimeoutMs`: a call not answered within it fails (CallTimeoutError) and its answer, if it comes later, is
   * ignored. A page gives its calls one: a reply that never comes would otherwise leave what it shows stale for good.
   */
  constructor(transport: Transport, options: { callTimeoutMs?: number } = {}) {
    this.#transport = transport;
    this.#callTimeoutMs = options.callTimeoutMs ?? 0;
    this.#attach(transport);
  }

  static async connect(url: string, options: WebSocketOptions): Promise<SpoolClient> {
    return new SpoolClient(await connectWebSocket(url, options));
  }

  /** Connects, initializes into `reconnect.project`, and keeps doing both whenever the connection drops. */
  static async open(url: string, options: WebSocketOptions & { reconnect: ReconnectOptions }): Promise<SpoolClient> {
    const open = () => connectWebSocket(url, options);
    const client = new SpoolClient(await open());
    client.#reconnect = { open, options: options.reconnect };
    try {
      await client.initialize(options.reconnect.project, {
        ...(options.reconnect.root ? { root: options.reconnect.root } : {}),
        ...(options.reconnect.client ? { client: options.reconnect.client } : {}),
        ...(options.reconnect.role ? { role: options.reconnect.role } : {}),
      });
    } catch (error) {
      // A connection whose initialize was refused (a project not there, out of scope) is not left open.
      client.close();
      throw error;
    }
    return client;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get transport(): Transport {
    return this.#transport;
  }

  /**
   * The params field of `method` that may be a Uint8Array, sent raw in a binary frame: set when the server
   * advertised binary frames for the method at initialize and this transport sends binary messages (WebSocket).
   */
  binaryField(method: string): string | undefined {
    return this.#transport.sendBinary ? this.#binary[method] : undefined;
  }

  /** A `stream` chunk may be passed as bytes (a binary frame); else it goes as utf8 or base64 text. */
  get bytes(): boolean {
    return this.binaryField("stream") !== undefined;
  }

  #attach(transport: Transport): void {
    // What the server takes is learnt again at the next initialize.
    this.#binary = {};
    transport.onMessage((text) => this.#receive(text));
    transport.onClose((code, reason) => {
      if (transport !== this.#transport || this.#abandoned.has(transport)) return;
      this.#rejectPending(`connection closed (${code}${reason ? `: ${reason}` : ""})`);
      if (this.#reconnect && !this.#closing) {
        // One loop at a time: a socket that closes while the loop joins with it is the loop's to try again.
        if (this.#reconnecting) this.#closedWhileJoining = transport;
        else void this.#reconnectLoop();
        return;
      }
      this.#closed = true;
      this.#tellClosed(code, reason);
    });
  }

  /** Tells the close listeners, once: at the close that ends the client, or when it is closed between reconnects. */
  #tellClosed(code: number, reason: string): void {
    if (this.#toldClosed) return;
    this.#toldClosed = true;
    tellEach(this.#closeListeners, code, reason);
  }

  async #reconnectLoop(): Promise<void> {
    this.#reconnecting = true;
    let joined = false;
    try {
      joined = await this.#reconnectTries();
    } finally {
      this.#reconnecting = false;
    }
    // Not joined: closed by its user, who told the close listeners (close()).
    if (!joined) return;
    // Joined: who listens is told; one that throws undoes nothing.
    tellEach(this.#reconnectListeners);
  }

  /** Connects and joins again, waiting longer each time; false when the client was closed meanwhile. */
  async #reconnectTries(): Promise<boolean> {
    const { open, options } = this.#reconnect!;
    let delay = options.minMs ?? 100;
    this.#closed = true;
    for (let attempt = 1; !this.#closing; attempt++) {
      await new Promise((r) => setTimeout(r, delay));
      // Closed by its user while it waited: nothing is opened.
      if (this.#closing) return false;
      delay = Math.min(options.maxMs ?? 5_000, delay * 2);
      this.#closedWhileJoining = null;
      let transport: Transport | null = null;
      try {
        transport = await open();
        this.#transport = transport;
        this.#attach(transport);
        if (this.#closing) throw new Error("closed by its user");
        this.#closed = false;
        await this.initialize(options.project, {
          ...(options.root ? { root: options.root } : {}),
          ...(options.client ? { client: options.client } : {}),
          ...(options.role ? { role: options.role } : {}),
        });
        for (const watch of this.#watches) await watch.resubscribe();
        if (this.#closedWhileJoining === transport) throw new Error("closed while joining");
        if (this.#closing) throw new Error("closed by its user");
        return true;
      } catch (error) {
        this.#closed = true;
        // Not joined (its initialize refused: the project gone, say; or the client closed meanwhile): its socket is
        // closed, not left open at every try, and its close starts no second loop. Tried again after the next delay.
        if (transport) {
          this.#abandoned.add(transport);
          this.#rejectPending("connection closed (not joined)");
          try {
            transport.close(1000, "not joined");
          } catch {
            // Already gone.
          }
        }
        // Why this try did not join (the server unreachable, the credential refused, the project gone), told to
        // who listens: the loop itself never gives up while the client is open.
        if (!this.#closing) tellEach(this.#reconnectFailedListeners, error, attempt);
      }
    }
    return false;
  }

  /** Calls a method with its typed params; rejects with SpoolRpcError on an error response, or when `signal` aborts. */
  call<M extends MethodName>(method: M, params: ParamsOf<M>, options: CallOptions = {}): Promise<ResultOf<M>> {
    return this.request<ResultOf<M>>(method, params as object, options);
  }

  /** Calls any method by name, untyped (for extensions and tests of bad input). */
  request<T = any>(method: string, params: object = {}, options: CallOptions = {}): Promise<T> {
    // Not an async function: a runner makes one call per chunk it reads, and this adds no promise of its own to #send's.
    if (this.#closed) return Promise.reject(new ConnectionClosedError("connection closed"));
    const signal = options.signal;
    let call: Promise<T>;
    try {
      signal?.throwIfAborted();
      call = this.#send(method, params, options.timeoutMs ?? this.#callTimeoutMs) as Promise<T>;
    } catch (error) {
      return Promise.reject(error);
    }
    return signal ? abortable(call, signal) : call;
  }

  /**
   * The error a call rejects with: SpoolRpcError for an error response, ConnectionClosedError when the
   * connection closed before the answer (code 0 without data, as json-rpc-2.0's client reported it).
   */
  #failure(message: string, code: number, data: unknown): Error {
    if (data === undefined && (this.#closed || /connection closed/.test(message))) return new ConnectionClosedError(message);
    return new SpoolRpcError(message, code, data as never);
  }

  /**
   * Sends one request: as a binary frame when its bytes field holds a Uint8Array, else as JSON text. Settles with
   * the result, or rejects with the error `#failure` makes (an error response; code 0 without data when the
   * request could not be sent or the connection closed first), without json-rpc-2.0's per-call generators and
   * promise chains (a runner sends one request per chunk it reads).
   */
  #send(method: string, params: object, timeoutMs: number): Promise<unknown> {
    const field = this.#binary[method];
    const bytes = field === undefined ? undefined : (params as Record<string, unknown>)[field];
    let frame: Uint8Array | undefined;
    if (bytes instanceof Uint8Array) {
      if (!this.#transport.sendBinary) throw new TypeError(`${method}: ${field} is bytes, and this transport sends no binary frames`);
      const { [field!]: _bytes, ...rest } = params as Record<string, unknown>;
      params = rest;
      frame = bytes;
    }
    const id = ++this.#nextId;
    const request = { jsonrpc: "2.0" as const, method, params, id };
    return new Promise((resolve, reject) => {
      const pending: Pending = { resolve, reject };
      this.#pending.set(id, pending);
      if (timeoutMs > 0) {
        pending.timer = setTimeout(() => {
          if (this.#pending.get(id) !== pending) return;
          // Its frame stays out of the pool: the server may still be reading it.
          this.#pending.delete(id);
          reject(new CallTimeoutError(`${method}: no answer within ${timeoutMs / 1000} s`));
        }, timeoutMs);
      }
      try {
        if (frame) {
          pending.frame = encodeBinaryFrame(request, frame, this.#frames.allocate);
          this.#transport.sendBinary!(pending.frame);
        } else this.#transport.send(JSON.stringify(request));
      } catch (error) {
        this.#pending.delete(id);
        if (pending.timer !== undefined) clearTimeout(pending.timer);
        reject(this.#failure((error as Error | undefined)?.message || "Failed to send a request", 0, undefined));
      }
    });
  }

  /** A response from the server: settles the request it answers (one answered already, or never sent, is ignored). */
  #settle(response: JSONRPCResponse): void {
    const pending = this.#pending.get(response.id as number);
    if (!pending) return;
    this.#pending.delete(response.id as number);
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    // Answered, so the server has read the whole frame: it left this process's socket and may be written again.
    if (pending.frame) this.#frames.release(pending.frame);
    if ("error" in response && response.error && (response as { result?: unknown }).result === undefined) {
      pending.reject(this.#failure(response.error.message, response.error.code, response.error.data));
    } else if ((response as { result?: unknown }).result !== undefined && !(response as { error?: unknown }).error) {
      pending.resolve((response as { result: unknown }).result);
    } else {
      pending.reject(new Error("An unexpected error occurred"));
    }
  }

  /** The connection closed: every request waiting for its answer fails (code 0, no data). */
  #rejectPending(message: string): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(this.#failure(message, 0, undefined));
    }
  }

  /** `initialize` with this library's protocol version; `project` undefined finds the project by `extra.root`. */
  async initialize(
    project: string | undefined,
    extra: { root?: string; create?: boolean; client?: { name: string; version: string }; role?: Role; traceparent?: string } = {},
  ) {
    const result = await this.call("initialize", { ...(project !== undefined ? { project } : {}), protocolVersion: PROTOCOL_VERSION, ...extra });
    // A server that takes no binary frames (an older one) answers without `binaryFrames`: everything goes as JSON text.
    if (result.binaryFrames?.version === BINARY_FRAME_VERSION) this.#binary = { ...result.binaryFrames.methods };
    return result;
  }

  notify(method: string, params: object = {}): void {
    try {
      this.#transport.send(JSON.stringify({ jsonrpc: "2.0", method, params }));
    } catch {
      // A notification has no answer to fail: one that cannot be sent is dropped.
    }
  }

  /** Listens to a server notification; returns a function that stops listening. */
  on<N extends string>(method: N, listener: Listener<N>): () => void {
    const set = this.#listeners.get(method) ?? new Set();
    set.add(listener);
    this.#listeners.set(method, set);
    return () => set.delete(listener);
  }

  /** Resolves with the params of the next notification of `method` that passes `match`. */
  next<N extends string>(
    method: N,
    match: (params: Parameters<Listener<N>>[0]) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<Parameters<Listener<N>>[0]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`timed out waiting for ${method}`));
      }, timeoutMs);
      const off = this.on(method, (params) => {
        if (!match(params)) return;
        clearTimeout(timer);
        off();
        resolve(params);
      });
    });
  }

  /**
   * Watches a producer's channels: replays what is stored after `after`, then
   * live chunks, until every channel ends. After a reconnect it subscribes
   * again from the last seq it received, so nothing is lost or repeated.
   * With `snapshot`, `ended` resolves once what was stored when it subscribed
   * has been delivered (a running channel then reports ENTRY.streaming).
   */
  watch(target: WatchTarget, onData: (chunk: StreamChunk) => void): Promise<StreamWatch> {
    return watchStream(this, this.#watches, target, onData);
  }

  /**
   * Reads an entry's lines byte-exact, a page at a time (each at most the server's read limit): from line `from`
   * (1-based, default 1), `count` of them (default: to the end). A page ends after a whole line; a line longer than
   * the limit comes in parts (`offset`). `onBytes` gets the bytes in order and is awaited, so a slow consumer slows
   * the reading instead of piling pages up. Resolves with the lines and bytes read.
   */
  readLines(
    run: string,
    path: string,
    onBytes: (bytes: Uint8Array) => void | Promise<void>,
    options: { from?: number; count?: number } = {},
  ): Promise<{ lines: number; bytes: number }> {
    return readLines(this, run, path, onBytes, options);
  }

  /** Sends text (as UTF-8) or bytes to a running producer's stdin or terminal (`stream/input`); `seq` makes a retry safe. */
  input(run: string, path: string, data: string | Uint8Array, options: { seq?: number } = {}): Promise<ResultOf<"stream/input">> {
    const payload = typeof data === "string" ? { data } : { data: base64(data), encoding: "base64" as const };
    return this.call("stream/input", { run, path, ...payload, ...(options.seq !== undefined ? { seq: options.seq } : {}) });
  }

  /** Ends a running producer's input (`stream/eof`): its stdin closes; under a terminal, ^D. */
  eof(run: string, path: string): Promise<ResultOf<"stream/eof">> {
    return this.call("stream/eof", { run, path });
  }

  /** Sends a signal ("INT", "TERM", …) to a running producer's process group (`stream/signal`). */
  signal(run: string, path: string, signal: ParamsOf<"stream/signal">["signal"]): Promise<ResultOf<"stream/signal">> {
    return this.call("stream/signal", { run, path, signal });
  }

  /** Resizes the terminal of a producer proposed with `tty` (`stream/resize`). */
  resize(run: string, path: string, size: { cols: number; rows: number }): Promise<ResultOf<"stream/resize">> {
    return this.call("stream/resize", { run, path, cols: size.cols, rows: size.rows });
  }

  /** Answers server → client requests of `method` (runners receive `runner/exec`; owners of producers `producer/input`, …). */
  handle(method: string, handler: RequestHandler): void {
    this.#handlers.set(method, handler);
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.#closeListeners.push(listener);
  }

  /** Called after a reconnect (for clients opened with `reconnect`), once watches are resubscribed. */
  onReconnect(listener: () => void): void {
    this.#reconnectListeners.push(listener);
  }

  /**
   * Called after each reconnect try that did not join, with why (`SpoolRpcError` for a refused initialize, say
   * `NOT_FOUND` for a removed project; the connection's own error when the server could not be reached) and the
   * try's number since the drop. The client keeps trying while open; `close()` from here ends it.
   */
  onReconnectFailed(listener: (error: unknown, attempt: number) => void): void {
    this.#reconnectFailedListeners.push(listener);
  }

  close(): void {
    this.#closing = true;
    this.#transport.close(1000, "client closing");
    // Between two reconnect tries no open socket will say it closed: the client's end is now.
    if (this.#reconnecting) this.#tellClosed(1000, "client closing");
  }

  #receive(text: string): void {
    let message: any;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (Array.isArray(message)) for (const m of message) this.#take(m);
    else this.#take(message);
  }

  /** One message: a notification, a request to answer, or the response to one of ours. */
  #take(m: any): void {
    if (m && typeof m.method === "string") {
      if (m.id === undefined || m.id === null) {
        for (const l of this.#listeners.get(m.method) ?? []) l(m.params);
      } else {
        void this.#answer(m.id, m.method, m.params);
      }
    } else {
      if (m && (typeof m.id === "number" || typeof m.id === "string")) this.#settle(m);
    }
  }

  async #answer(id: string | number, method: string, params: unknown): Promise<void> {
    const reply = await answer(this.#handlers.get(method), id, method, params);
    if (this.#closed) return;
    try {
      this.#transport.send(JSON.stringify(reply));
    } catch {
      // The connection closed while the handler ran (its close not yet told to this client): the server that asked is
      // gone with it, and so is anyone to answer.
    }
  }
}
