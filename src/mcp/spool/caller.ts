/* Who calls /mcp: the principal its bearer credential names (both revisions, src/mcp/http.ts and src/mcp/stateless/modern.ts); over stdio, spool mcp's own. */

import type { DoorCaller } from "../../door/door.js";
import type { BridgeLog, McpBridgeOptions } from "./spool-side.js";

/** Who called, as the server's authentication found it (the front door's caller; only `person` and `admin` may decide from the MCP client). */
export type McpCaller = DoorCaller;

/** Where a request works: the project, mode and runner of /mcp's query (over stdio, spool mcp's own). */
export interface McpTarget {
  project: { name?: string; root?: string };
  mode: "ask" | "act";
  runner?: string;
}

/** A caller that may decide a proposal from its MCP client (elicitation): a person or an admin. */
export function mayDecide(caller: McpCaller): boolean {
  return caller.role === "person" || caller.role === "admin";
}

/**
 * The bridge a /mcp caller gets, on either revision: a client of this server with the caller's own credential,
 * for the request's project, mode and runner; its connection acts as an agent unless the caller may decide.
 */
export function bridgeOptionsFor(
  caller: McpCaller,
  target: Pick<McpBridgeOptions, "project" | "mode" | "runner">,
  server: {
    serverUrl?: (() => string) | undefined;
    door?: string | undefined;
    server?: McpBridgeOptions["server"] | undefined;
    version: string;
    log: BridgeLog;
    extras?: McpBridgeOptions["extras"];
  },
  via: string,
): McpBridgeOptions {
  const { serverUrl } = server;
  return {
    // Over stdio the one server and credential `spool mcp` was given; over HTTP this server, with the caller's own.
    server:
      server.server ??
      (async () => {
        if (!serverUrl) throw new Error("no Spool server to reach (neither a URL nor a server given)");
        return { url: serverUrl(), token: caller.credential, door: server.door };
      }),
    project: target.project,
    mode: target.mode,
    runner: target.runner,
    version: server.version,
    log: server.log,
    role: mayDecide(caller) ? "person" : "agent",
    via,
    ...(server.extras ? { extras: server.extras } : {}),
  };
}
