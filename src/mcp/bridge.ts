import type { Server, Transport } from "@modelcontextprotocol/server";
import { sessionServer } from "./server.js";
import type { McpBridgeOptions, SpoolSide } from "./spool-side.js";
import { message } from "./text.js";

export type { BridgeLog, McpBridgeOptions } from "./spool-side.js";

/*
 * The bridge's parts, each in its own file: the Spool side every part shares (spool-side.ts), the tools
 * (tools.ts, run-command.ts with decision.ts and progress.ts, output.ts), the resources (resources.ts), the
 * tasks (tasks.ts); the transports are stdio (stdio.ts, for src/cli/commands/mcp.ts) and Streamable HTTP (http.ts).
 * The server of a 2025-11-25 session is made by server.ts's `sessionServer`, beside 2026-07-28's `spoolServer`:
 * the same tools and resources (one table, plain functions) on the v2 SDK's Server; nothing reaches into the
 * SDK's own members.
 */

/** How long closing waits for the calls it cancels to be confirmed by the server. */
const CLOSE_WAIT_MS = 10_000;

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

  /** After the MCP connection closed: rejects the proposals still waiting, stops following, closes the Spool connection. */
  async close(): Promise<void> {
    this.#side.closing = true;
    await this.#resources.close();
    const session = await this.#side.opened();
    // The calls the close aborted reject their proposals and cancel their commands: let them reach the server.
    await new Promise((resolve) => setImmediate(resolve));
    // Within reason: with the server unreachable, a cancel cannot be confirmed (the server's grace period ends it).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.#side.inFlight]), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    session?.client.close();
  }
}
