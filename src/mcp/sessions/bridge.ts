import type { Server, Transport } from "@modelcontextprotocol/server";
import type { McpBridgeOptions, SpoolSide } from "../spool/spool-side.js";
import { message } from "../spool/text.js";
import { sessionServer } from "./server.js";

export type { BridgeLog, McpBridgeOptions } from "../spool/spool-side.js";

/*
 * A 2025-11-25 session: its server (server.ts: the tools, resources and tasks on the v2 SDK's Server) on a
 * transport, stdio (src/mcp/stdio.ts) or one Streamable HTTP session (src/mcp/http.ts). What it offers is the
 * Spool floor's (src/mcp/spool/: the Spool side, the tools, the resources), shared with 2026-07-28's wing
 * (src/mcp/stateless/).
 */

/**
 * `spool mcp`: an MCP server (the official SDK) that is a client of a Spool server. One MCP connection is one
 * Spool run in the project; each `run_command` is a proposal any Spool client can decide, its output comes as
 * progress and its result is the model's view of the output. Closing the connection rejects the proposals still
 * waiting and cancels the commands it was waiting on; commands started in the background go on.
 */
export class McpBridge {
  readonly mcp: Server;
  readonly #side: SpoolSide;
  readonly #resources: { close(): Promise<void> };

  constructor(options: McpBridgeOptions) {
    const { server, side, resources } = sessionServer(options);
    this.mcp = server;
    this.#side = side;
    this.#resources = resources;
    this.mcp.oninitialized = () => {
      // Requests to the client are numbered from 0, and clients that test the id for truth (the SDK's own among them)
      // ignore notifications/cancelled for request 0: a ping takes that number, so a withdrawn elicitation never has it.
      this.mcp.ping().catch(() => undefined);
      void side.ready().catch((error: unknown) => side.log.warn(`spool mcp: ${message(error)}`));
    };
  }

  /** The Spool side its tools work on (MCP 2026-07-28 reaches it without a connection of the SDK's). */
  get side(): SpoolSide {
    return this.#side;
  }

  /** Serves one MCP connection over `transport`; resolves when it closes. */
  async serve(transport: Transport): Promise<void> {
    await (await this.connect(transport)).closed;
  }

  /** Connects the MCP server to `transport` (stdio, or one Streamable HTTP session); `closed` resolves when it closes. */
  async connect(transport: Transport): Promise<{ closed: Promise<void> }> {
    const closed = new Promise<void>((resolve) => {
      const previous = transport.onclose;
      transport.onclose = () => {
        this.#side.closing = true;
        previous?.();
        resolve();
      };
    });
    await this.mcp.connect(transport);
    const onerror = transport.onerror;
    transport.onerror = (error) => {
      this.#side.log.warn(`spool mcp: ${message(error)}`);
      onerror?.(error);
    };
    return { closed };
  }

  /** After the MCP connection closed: stops its subscriptions; the Spool side rejects the proposals still waiting and closes. */
  async close(): Promise<void> {
    this.#side.closing = true;
    await this.#resources.close();
    await this.#side.close();
  }
}
