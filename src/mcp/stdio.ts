import { StringDecoder } from "node:string_decoder";
import { type JSONRPCMessage, ProtocolError, type Transport } from "@modelcontextprotocol/server";
import { type StdioServerHandle, serveStdio } from "@modelcontextprotocol/server/stdio";
import { McpBridge } from "./sessions/bridge.js";
import { SESSION_VERSION } from "./sessions/server.js";
import type { McpCaller, McpTarget } from "./spool/caller.js";
import type { BridgeLog, McpBridgeOptions } from "./spool/spool-side.js";
import { message as messageOf } from "./spool/text.js";
import { listenedUris } from "./stateless/listen-watch.js";
import { ModernMcp } from "./stateless/modern.js";
import { CODES, idOrNull, isModern, MODERN_VERSION, malformedInputResponses, refusedEnvelope } from "./stateless/wire.js";

/*
 * `spool mcp`'s stdin and stdout, one JSON-RPC message a line, in both revisions (the stdio binding's
 * "dual-era server"). Each message is routed on its own: a request whose `_meta` names a protocol version is
 * 2026-07-28's, served by the v2 SDK's serveStdio (legacy: 'reject') on a LineTransport, with ModernMcp's server
 * (stateless/server.ts) and the watches of its listens; `initialize` starts the 2025-11-25 session (McpBridge on the v2
 * SDK's Server, through another LineTransport), which then gets every other message. A request that is neither,
 * before any initialize, is refused and starts nothing. The lines are routed here, not by serveStdio alone: it pins
 * one revision per connection (its `legacy: "serve"` included), where one `spool mcp` serves both on the same
 * stdin, and after pinning it checks no request's envelope; the bounds (a line's length, requests under way, the
 * kept connection each request holds) are Spool's.
 */

type Message = { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: Record<string, unknown> };

/** One revision's side of stdio: a Transport fed the lines routed to it. */
class LineTransport implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  #queue: JSONRPCMessage[] | null = [];
  #closed = false;

  constructor(private readonly write: (message: unknown) => void) {}

  /** The SDK set its handlers: what came meanwhile (the initialize) goes to them. */
  async start(): Promise<void> {
    const queued = this.#queue ?? [];
    this.#queue = null;
    for (const m of queued) this.onmessage?.(m);
  }

  deliver(message: JSONRPCMessage): void {
    if (this.#queue) this.#queue.push(message);
    else this.onmessage?.(message);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (!this.#closed) this.write(message);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.onclose?.();
  }
}

/** The longest line (one message) read, in characters. */
export const MAX_LINE = 4 * 1024 * 1024;

/** 2026-07-28 requests under way at once (calls waiting for their decision, listens); the next is refused. */
export const MAX_UNDER_WAY = 256;

export interface StdioOptions {
  input: NodeJS.ReadableStream;
  write(line: string): void;
  /** The 2025-11-25 session's bridge, made at the first initialize. */
  legacy(): McpBridge;
  /** 2026-07-28's requests, for this one caller and target. */
  modern: ModernMcp;
  caller: McpCaller;
  target: McpTarget;
  log: BridgeLog;
}

/** `spool mcp`'s one Spool server, project, mode and role (src/cli/commands/mcp.ts), for both revisions. */
export interface SpoolMcpOptions extends Pick<McpBridgeOptions, "server" | "project" | "mode" | "runner" | "where" | "version" | "log"> {
  input: NodeJS.ReadableStream;
  write(line: string): void;
  role: "agent" | "person";
}

/**
 * `spool mcp`'s stdio, both wings behind it: a 2025-11-25 session's bridge (src/mcp/sessions/) made at the first
 * initialize, and 2026-07-28's requests (src/mcp/stateless/) for its one caller and target. The principal is the
 * credential's, so a request state is bound to this process.
 */
export function spoolMcp(options: SpoolMcpOptions): StdioServer {
  const { server, project, mode, role, runner, where, version, log } = options;
  return new StdioServer({
    input: options.input,
    write: options.write,
    legacy: () => new McpBridge({ server, project, mode, role, runner, where, version, log }),
    modern: new ModernMcp({ server, via: `spool mcp, MCP ${MODERN_VERSION}`, where, version, log, limits: { idleMs: Number.POSITIVE_INFINITY } }),
    caller: { name: "spool mcp", role, credential: "" },
    target: { project, mode, ...(runner !== undefined ? { runner } : {}) },
    log,
  });
}

export class StdioServer {
  #legacy: { bridge: McpBridge; transport: LineTransport; connected: Promise<unknown> } | null = null;
  /** 2026-07-28: serveStdio, started at the first such request. */
  #modern: { channel: LineTransport; handle: StdioServerHandle } | null = null;
  /** 2026-07-28 requests under way (notifications/cancelled names them; one id, one request). */
  readonly #underWay = new Set<string | number>();
  /** The watches of open listens, by request id: each lets go of them. */
  readonly #listens = new Map<string | number, Promise<() => void>>();
  /** The kept Spool connections held by the other requests under way, by request id: each lets go of its own. */
  readonly #held = new Map<string | number, () => void>();
  #ended: (() => void) | null = null;

  constructor(private readonly options: StdioOptions) {}

  /** Serves until stdin ends (or `stop`); then closes both revisions' sides. */
  async serve(): Promise<void> {
    const ended = new Promise<void>((resolve) => (this.#ended = resolve));
    let buffered = "";
    // Bytes decoded across chunks (a character split between two reads stays whole).
    const decoder = new StringDecoder("utf8");
    const onData = (chunk: Buffer | string) => {
      buffered += typeof chunk === "string" ? chunk : decoder.write(chunk);
      // A line longer than any message may be ends the connection, not the process's memory.
      if (buffered.length > MAX_LINE && buffered.lastIndexOf("\n") < 0) {
        this.#error(null, CODES.invalidRequest, `A line over ${MAX_LINE} characters: not read; the connection ends`);
        this.stop();
        return;
      }
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const line = buffered.slice(0, newline).replace(/\r$/, "");
        buffered = buffered.slice(newline + 1);
        if (line.trim() !== "") this.#line(line);
        newline = buffered.indexOf("\n");
      }
    };
    const input = this.options.input;
    const onError = (error: Error) => {
      this.options.log.warn(`spool mcp: reading stdin: ${error.message}`);
      this.stop();
    };
    input.on("data", onData);
    input.on("error", onError);
    input.once("end", () => this.stop());
    input.once("close", () => this.stop());
    await ended;
    input.off("data", onData);
    input.off("error", onError);
    // Not read any more: a stdin still open (SIGTERM) must not keep the process alive.
    input.pause();
    await this.#close();
  }

  /** Ends serving as if stdin had closed. */
  stop(): void {
    this.#ended?.();
  }

  #send = (message: unknown) => this.options.write(`${JSON.stringify(message)}\n`);

  #error(id: unknown, code: number, message: string): void {
    this.#send({ jsonrpc: "2.0", id: idOrNull(id), error: { code, message } });
  }

  #line(line: string): void {
    let message: Message;
    try {
      message = JSON.parse(line) as Message;
    } catch {
      this.#error(null, CODES.parse, "Parse error: each line is one JSON-RPC message");
      return;
    }
    if (message && typeof message === "object" && !Array.isArray(message)) this.#route(message);
    else this.#error(null, CODES.invalidRequest, "Not a JSON-RPC 2.0 message");
  }

  #route(message: Message): void {
    const isRequest = typeof message.method === "string" && "id" in message;
    if (message.method === "notifications/cancelled" && this.#cancelled(message)) return;
    if (isRequest && isModern(message)) this.#toModern(message);
    else if (this.#legacy) this.#legacy.transport.deliver(message as JSONRPCMessage);
    else if (message.method === "initialize") this.#startLegacy(message as JSONRPCMessage);
    else if (isRequest)
      this.#error(
        message.id,
        CODES.invalidParams,
        `Every request carries _meta "io.modelcontextprotocol/protocolVersion" (2026-07-28), or the client starts a ${SESSION_VERSION} session with initialize`,
      );
  }

  /** A cancel of a 2026-07-28 request goes to serveStdio (a listen's also lets go of its watches). */
  #cancelled(message: Message): boolean {
    const id = message.params?.requestId;
    if ((typeof id !== "string" && typeof id !== "number") || !this.#underWay.has(id)) return false;
    this.#modern?.channel.deliver(message as JSONRPCMessage);
    this.#settled(id);
    return true;
  }

  #toModern(message: Message): void {
    const id = message.id;
    if (typeof id === "string" || typeof id === "number") {
      if (this.#underWay.has(id)) {
        this.#error(id, CODES.invalidRequest, `Request id ${String(id)} is still under way: one id, one request`);
        return;
      }
      // Every request's envelope, before anything is done for it (serveStdio checks only those before it pins the revision).
      const refused = refusedEnvelope(message);
      if (refused) {
        this.#send({ jsonrpc: "2.0", id, error: refused });
        return;
      }
      const malformed = malformedInputResponses(message.params);
      if (malformed) {
        this.#error(id, CODES.invalidParams, malformed);
        return;
      }
      if (this.#underWay.size >= MAX_UNDER_WAY) {
        this.#error(id, CODES.internal, `Too many MCP requests under way (${MAX_UNDER_WAY}); retry when one ends`);
        return;
      }
      if (message.method === "subscriptions/listen") {
        const listening = listenedUris(message.params);
        if ("refused" in listening) {
          this.#error(id, CODES.invalidParams, listening.refused);
          return;
        }
        // What it follows is watched before serveStdio acknowledges it: a listen Spool refuses (no server, a credential
        // gone) is answered so, as over HTTP, not acknowledged to follow nothing. A cancel meanwhile ends it unanswered.
        const { modern, caller, target } = this.options;
        const watched = modern.watch(caller, target, message, listening);
        this.#listens.set(
          id,
          watched.catch(() => () => undefined),
        );
        this.#underWay.add(id);
        watched.then(
          () => {
            if (this.#underWay.has(id)) this.#channel().deliver(message as JSONRPCMessage);
          },
          (error: unknown) => {
            if (!this.#underWay.has(id)) return;
            this.#settled(id);
            // Every kept connection busy: that error, as for any request; else Spool's refusal.
            if (error instanceof ProtocolError) this.#error(id, error.code, error.message);
            else this.#error(id, CODES.invalidParams, `Spool refused it: ${messageOf(error)}`);
          },
        );
        return;
      }
      // Its client's kept connection is held until it is answered, as over HTTP: never closed under it for another client.
      const { modern, caller, target } = this.options;
      let release: (() => void) | null;
      try {
        release = modern.hold(caller, target, message);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        this.#error(id, error.code, error.message);
        return;
      }
      if (release) this.#held.set(id, release);
      this.#underWay.add(id);
    }
    this.#channel().deliver(message as JSONRPCMessage);
  }

  #channel(): LineTransport {
    if (this.#modern) return this.#modern.channel;
    const channel = new LineTransport((message) => {
      const { id } = message as { id?: unknown };
      if ((typeof id === "string" || typeof id === "number") && !("method" in (message as object))) this.#settled(id);
      this.#send(message);
    });
    const { modern, caller, target, log } = this.options;
    const handle = serveStdio(() => modern.stdioServer(caller, target), {
      transport: channel,
      legacy: "reject",
      onerror: (error) => log.info(`spool mcp: ${error.message}`),
    });
    this.#modern = { channel, handle };
    return channel;
  }

  /** A 2026-07-28 request answered or cancelled: its id is free again, its kept connection or a listen's watches let go. */
  #settled(id: string | number): void {
    this.#underWay.delete(id);
    this.#held.get(id)?.();
    this.#held.delete(id);
    const watched = this.#listens.get(id);
    this.#listens.delete(id);
    void watched?.then((release) => release());
  }

  #startLegacy(initialize: JSONRPCMessage): void {
    const transport = new LineTransport(this.#send);
    const bridge = this.options.legacy();
    transport.deliver(initialize);
    const connected = bridge.connect(transport).catch((error: unknown) => this.options.log.warn(`spool mcp: ${messageOf(error)}`));
    this.#legacy = { bridge, transport, connected };
  }

  async #close(): Promise<void> {
    // 2026-07-28 first: each open listen is answered with its completion, the calls under way stop (a proposal
    // waited on is withdrawn, a command followed is cancelled), saying the client's connection closed.
    this.options.modern.closing();
    await this.#modern?.handle.close();
    for (const id of [...this.#listens.keys()]) this.#settled(id);
    const legacy = this.#legacy;
    if (legacy) {
      await legacy.connected;
      await legacy.transport.close();
      await legacy.bridge.close();
    }
    await this.options.modern.close();
  }
}
