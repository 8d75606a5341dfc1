import { expect } from "vitest";
import type { CliProcess } from "../helpers/process.js";

/** The `_meta` keys of MCP 2026-07-28 (written out: the test checks the wire, not the source's constants). */
export const MODERN_META = {
  version: "io.modelcontextprotocol/protocolVersion",
  capabilities: "io.modelcontextprotocol/clientCapabilities",
  client: "io.modelcontextprotocol/clientInfo",
  server: "io.modelcontextprotocol/serverInfo",
  subscription: "io.modelcontextprotocol/subscriptionId",
} as const;

// biome-ignore lint/suspicious/noExplicitAny: raw JSON-RPC messages are checked field by field
export type Message = any;

/**
 * A second MCP client that is not the SDK: newline-delimited JSON-RPC written by hand to `spool mcp`'s
 * stdin, every line of its stdout parsed as one message. It checks the raw shapes the SDK would hide.
 */
export class RawClient {
  readonly messages: Message[] = [];
  #buffer = "";
  #waiters: (() => void)[] = [];
  #id = 0;

  constructor(readonly cli: CliProcess) {
    cli.child.stdout!.on("data", (d: Buffer) => {
      this.#buffer += d.toString();
      for (let nl = this.#buffer.indexOf("\n"); nl >= 0; nl = this.#buffer.indexOf("\n")) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        // Nothing but JSON-RPC on stdout: a line that is not one fails the test here.
        const message = JSON.parse(line);
        expect(message.jsonrpc).toBe("2.0");
        this.messages.push(message);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  send(message: object): void {
    this.cli.write(`${JSON.stringify({ jsonrpc: "2.0", ...message })}\n`);
  }

  request(method: string, params: object): number {
    const id = ++this.#id;
    this.send({ id, method, params });
    return id;
  }

  /** Sends a request and resolves with its answer. */
  call(method: string, params: object): Promise<Message> {
    const id = this.request(method, params);
    return this.next((m) => m.id === id && m.method === undefined);
  }

  /** The first message (from `from` on) that matches; the server's own requests (ping) are answered on the way. */
  next(match: (m: Message) => boolean, from = 0, timeoutMs = 20_000): Promise<Message> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; got:\n${JSON.stringify(this.messages, null, 1)}\n${this.cli.stderr()}`)), timeoutMs);
      const look = () => {
        for (const m of this.messages) {
          if (m.method === "ping" && m.id !== undefined && !m.answered) {
            m.answered = true;
            this.send({ id: m.id, result: {} });
          }
        }
        const found = this.messages.slice(from).find(match);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else this.#waiters.push(look);
      };
      look();
    });
  }

  async initialize(): Promise<Message> {
    const id = this.request("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw-agent", version: "0.1" } });
    const reply = await this.next((m) => m.id === id);
    this.send({ method: "notifications/initialized" });
    return reply;
  }

  /**
   * A 2026-07-28 request: its `_meta` names the revision, the client and its capabilities (no initialize); resolves
   * with its answer. `meta` adds to (or, with undefined values, takes from) the `_meta`.
   */
  modern(method: string, params: object, options: { capabilities?: object; client?: string; meta?: Record<string, unknown> } = {}): Promise<Message> {
    const id = this.request(method, this.modernParams(params, options));
    return this.next((m) => m.id === id && m.method === undefined);
  }

  /** A 2026-07-28 request's params, with the `_meta` the revision asks of every request. */
  modernParams(params: object, options: { capabilities?: object; client?: string; meta?: Record<string, unknown> } = {}): object {
    const meta: Record<string, unknown> = {
      [MODERN_META.version]: "2026-07-28",
      [MODERN_META.client]: { name: options.client ?? "raw-modern-agent", version: "0.1" },
      [MODERN_META.capabilities]: options.capabilities ?? {},
      ...(params as { _meta?: object })._meta,
    };
    for (const [k, v] of Object.entries(options.meta ?? {})) {
      if (v === undefined) delete meta[k];
      else meta[k] = v;
    }
    return { ...params, _meta: meta };
  }
}
