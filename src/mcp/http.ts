import type { IncomingMessage, ServerResponse } from "node:http";
import { isLegacyRequest } from "@modelcontextprotocol/server";
import { type EndpointOptions, entryId, FrontDoor, shuttingDown, streamMethod } from "../door/door.js";
import { answerFailure, DoorError } from "../door/errors.js";
import { webRequest } from "../door/web.js";
import { PROJECT_NAME } from "../protocol/project-name.js";
import { HttpSessions, type SessionLimits } from "./sessions/http.js";
import { SESSION_VERSION } from "./sessions/server.js";
import type { McpTarget } from "./spool/caller.js";
import type { McpExtras } from "./spool/extras.js";
import type { BridgeLog } from "./spool/spool-side.js";
import { type ModernLimits, ModernMcp } from "./stateless/modern.js";
import { CODES, MODERN_VERSION } from "./stateless/wire.js";

/*
 * MCP over Streamable HTTP at /mcp on `spool serve`'s own port: each MCP session is one McpBridge (the same
 * tools, resources and tasks as `spool mcp` on stdio) on the v2 SDK's WebStandardStreamableHTTPServerTransport
 * (src/mcp/sessions/http.ts), a
 * client of this server over its WebSocket with the caller's own credential, so the server's checks of that
 * credential apply to every call it makes. Which revision a POST speaks (a 2025-11-25 session's, a 2026-07-28
 * request without one, or neither: refused) is the v2 SDK's classifier's decision. Who comes in, how much each
 * principal holds, how a body is read and how an answer crosses to node:http are the front door's (src/door), as
 * for /acp: one node:http ↔ web adapter (src/door/web.ts) for both doors, rather than the MCP SDK's node package
 * for /mcp alone. The 2025-11-25 sessions are src/mcp/sessions/'s, the 2026-07-28 requests src/mcp/stateless/'s;
 * this entry picks the wing.
 */

export type { McpCaller } from "./spool/caller.js";

export interface McpHttpLimits extends SessionLimits {
  /** Largest POST body. */
  maxBodyBytes: number;
}

export const DEFAULT_MCP_LIMITS: McpHttpLimits = {
  maxSessions: 64,
  maxSessionsPerPrincipal: 8,
  maxBodyBytes: 1024 * 1024,
  maxStreamsPerSession: 16,
  idleMs: 30 * 60_000,
};

export interface McpHttpOptions extends EndpointOptions {
  version: string;
  log: BridgeLog;
  limits?: Partial<McpHttpLimits>;
  /** Limits of the 2026-07-28 side (its kept Spool connections). */
  modernLimits?: Partial<ModernLimits>;
  /** Tools and resources beside Spool's own, for both revisions (src/mcp/spool/extras.ts: the conformance suite's fixture, in test code only). */
  extras?: McpExtras;
}

export const MCP_PATH = "/mcp";

/** The /mcp endpoint: `handle` answers a request whose path is /mcp; `close` ends every session. */
export class McpHttpEndpoint {
  readonly #limits: McpHttpLimits;
  readonly #door: FrontDoor;
  /** MCP 2025-11-25: the sessions (src/mcp/sessions/http.ts). */
  readonly #sessions: HttpSessions;
  /** MCP 2026-07-28: requests without a session (src/mcp/stateless/modern.ts). */
  readonly #modern: ModernMcp;
  #closed = false;

  constructor(private readonly options: McpHttpOptions) {
    this.#limits = { ...DEFAULT_MCP_LIMITS, ...options.limits };
    this.#door = FrontDoor.of(options);
    this.#sessions = new HttpSessions(this.#door, options, this.#limits);
    this.#modern = new ModernMcp({
      serverUrl: options.serverUrl,
      door: options.door,
      version: options.version,
      log: options.log,
      limits: options.modernLimits,
      reserve: this.#door.limits.homeReserve,
      extras: options.extras,
    });
  }

  /** Open sessions (for tests and the server's figures). */
  get sessions(): number {
    return this.#sessions.size;
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    this.#handle(request, response).catch((error: unknown) => answerFailure(response, error, this.options.log, "mcp"));
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    // Checked before anything is read: a foreign page's request, one without a credential, or one past its
    // principal's requests under way costs nothing. A runner's credential uses no MCP tool: no session, no answer.
    const admitted = await this.#door.enter(request, response, "MCP's tools need the agent role or above");
    const { caller, holder } = admitted;
    if (this.#closed) throw shuttingDown();
    const method = streamMethod(request, MCP_PATH);
    const id = entryId(request, "Mcp-Session-Id");
    if (method !== "POST") {
      // A GET or DELETE is a 2025-11-25 session's (as the SDK's classifier has every POST-less request).
      if (id === undefined)
        throw new DoorError(
          405,
          `No Mcp-Session-Id: ${MODERN_VERSION} clients POST each request; ${SESSION_VERSION} clients start a session with an initialize request (POST)`,
          { Allow: "POST" },
        );
      return this.#sessions.serve(id, caller, request, response, undefined);
    }
    const body = await this.#door.json(request, admitted, this.#limits.maxBodyBytes);
    // Which revision it speaks is the v2 SDK's decision: what is not 2025-11-25 traffic (a session's) goes to the
    // SDK's 2026-07-28 handler, which refuses what neither revision takes, with its status, code and message.
    if (!(await isLegacyRequest(webRequest(request, response), body))) {
      // Checked when the request needs it (the tool list needs no project); 2026-07-28 has no sessions: an
      // Mcp-Session-Id beside such a request names none of its.
      const target = () => {
        try {
          return projectOf(request);
        } catch (error) {
          throw error instanceof DoorError ? new DoorError(400, error.message, {}, CODES.invalidParams, { id: idOf(body) }) : error;
        }
      };
      return this.#modern.serve(request, response, body, caller, holder, target);
    }
    if (id === undefined) {
      if ((body as { method?: unknown } | null)?.method === "initialize")
        return this.#sessions.start(request, response, caller, holder, projectOf(request), body);
      throw new DoorError(
        400,
        `No Mcp-Session-Id: the first request of a ${SESSION_VERSION} session is initialize (a ${MODERN_VERSION} request carries _meta io.modelcontextprotocol/protocolVersion)`,
      );
    }
    await this.#sessions.serve(id, caller, request, response, body);
  }

  /**
   * A principal's credential was revoked (or expired): its sessions end and their open SSE streams close, as do
   * its 2026-07-28 streams. How many sessions and streams ended.
   */
  endPrincipal(name: string, why = "its credential was revoked"): number {
    return this.#sessions.endPrincipal(name, why) + this.#modern.endPrincipal(name);
  }

  /** Ends every session (the server stops); their tasks go on in Spool's store. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#modern.close();
    await this.#sessions.close();
  }
}

/** The project, mode and runner a session works with, from /mcp's query: ?project=NAME or ?root=/abs/dir, &mode=, &runner=. */
function projectOf(request: IncomingMessage): McpTarget {
  const query = new URL(request.url ?? "/", "http://localhost").searchParams;
  for (const key of query.keys()) {
    if (!["project", "root", "mode", "runner"].includes(key))
      throw new DoorError(400, `Unknown parameter "${key}" in ${MCP_PATH}'s query (project, root, mode, runner)`);
  }
  const name = query.get("project") ?? undefined;
  const root = query.get("root") ?? undefined;
  if (name === undefined && root === undefined) throw new DoorError(400, `Name the project: ${MCP_PATH}?project=NAME (or ?root=/its/absolute/dir)`);
  if (name !== undefined && !PROJECT_NAME.test(name)) throw new DoorError(400, `Not a project name: "${name}"`);
  if (root !== undefined && !root.startsWith("/")) throw new DoorError(400, `root is an absolute directory, not "${root}"`);
  const mode = query.get("mode") ?? "act";
  if (mode !== "ask" && mode !== "act") throw new DoorError(400, `mode is ask or act, not "${mode}"`);
  const runner = query.get("runner") ?? undefined;
  if (runner !== undefined && (runner === "" || runner === "self")) throw new DoorError(400, `runner names an attached runner, not "${runner}"`);
  return {
    project: { ...(name !== undefined ? { name } : {}), ...(root !== undefined ? { root } : {}) },
    mode,
    ...(runner !== undefined ? { runner } : {}),
  };
}

/** A request's id to echo in an error (null when it has none to read). */
function idOf(body: unknown): string | number | null {
  const id = (body as { id?: unknown } | null)?.id;
  return typeof id === "string" || typeof id === "number" ? id : null;
}
