import { StringDecoder } from "node:string_decoder";
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/server";
import type { McpBridge } from "./bridge.js";
import type { McpCaller } from "./caller.js";
import type { McpTarget, ModernMcp } from "./modern.js";
import { LineReply } from "./modern-stdio.js";
import { CODES, checkRequest, idOrNull, isModern, SESSION_VERSION } from "./modern-wire.js";
import type { BridgeLog } from "./spool-side.js";
import { message as messageOf } from "./text.js";

/*
 * `spool mcp`'s stdin and stdout, one JSON-RPC message a line, in both revisions (the stdio binding's
 * "dual-era server"). Each message is routed on its own: a request whose `_meta` names a protocol version is
 * 2026-07-28's (ModernMcp, answered with LineReply); `initialize` starts the 2025-11-25 session (McpBridge on the
 * v2 SDK's Server, through LineTransport), which then gets every other message. A request that is neither, before any
 * initialize, is refused and starts nothing.
 */

type Message = { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: Record<string, unknown> };

/** The 2025-11-25 Server's side of stdio: a Transport fed the lines routed to the 2025-11-25 session. */
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

export class StdioServer {
  #legacy: { bridge: McpBridge; transport: LineTransport; connected: Promise<unknown> } | null = null;
  /** 2026-07-28 requests under way, by id (notifications/cancelled names them). */
  readonly #replies = new Map<string | number, LineReply>();
  readonly #answering = new Set<Promise<void>>();
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
    if (message.method === "notifications/cancelled") this.#cancelled(message.params);
    if (isRequest && isModern(message)) this.#modern(message);
    else if (this.#legacy) this.#legacy.transport.deliver(message as JSONRPCMessage);
    else if (message.method === "initialize") this.#startLegacy(message as JSONRPCMessage);
    else if (isRequest)
      this.#error(
        message.id,
        CODES.invalidParams,
        `Every request carries _meta "io.modelcontextprotocol/protocolVersion" (2026-07-28), or the client starts a ${SESSION_VERSION} session with initialize`,
      );
  }

  #cancelled(params: Record<string, unknown> | undefined): void {
    const id = params?.requestId;
    if (typeof id !== "string" && typeof id !== "number") return;
    this.#replies.get(id)?.cancel(typeof params?.reason === "string" ? params.reason : "cancelled by the client (notifications/cancelled)");
  }

  #modern(message: Message): void {
    let checked: ReturnType<typeof checkRequest>;
    try {
      checked = checkRequest(message, null);
    } catch (error) {
      new LineReply(this.#send, idOrNull(message.id), this.options.modern.serverInfo).error(error);
      return;
    }
    if ("notification" in checked || checked.id === null) return;
    const id = checked.id;
    if (this.#replies.has(id)) {
      this.#error(id, CODES.invalidRequest, `Request id ${String(id)} is still under way: one id, one request`);
      return;
    }
    const reply = new LineReply(this.#send, id, this.options.modern.serverInfo);
    this.#replies.set(id, reply);
    const { modern, caller, target } = this.options;
    const answering = modern
      .answer(reply, checked, caller, () => target)
      .finally(() => {
        if (this.#replies.get(id) === reply) this.#replies.delete(id);
        this.#answering.delete(answering);
      });
    this.#answering.add(answering);
  }

  #startLegacy(initialize: JSONRPCMessage): void {
    const transport = new LineTransport(this.#send);
    const bridge = this.options.legacy();
    transport.deliver(initialize);
    const connected = bridge.connect(transport).catch((error: unknown) => this.options.log.warn(`spool mcp: ${messageOf(error)}`));
    this.#legacy = { bridge, transport, connected };
  }

  async #close(): Promise<void> {
    const legacy = this.#legacy;
    if (legacy) {
      await legacy.connected;
      await legacy.transport.close();
      await legacy.bridge.close();
    }
    // 2026-07-28: the calls under way stop (a proposal waited on is withdrawn, a command followed is cancelled).
    await this.options.modern.close();
    for (const reply of this.#replies.values()) reply.close();
    await Promise.allSettled([...this.#answering]);
  }
}
