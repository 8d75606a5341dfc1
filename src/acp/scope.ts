import { RequestError, type ToolKind } from "@agentclientprotocol/sdk";
import { ConnectionClosedError, type SpoolClient, SpoolRpcError } from "../client/spool-client.js";
import type { Logger } from "../logger.js";
import type { ProposalFacts } from "../protocol/proposal-facts.js";
import type { CommandOutput } from "./output.js";
import type { Foreground } from "./state.js";
import type { Editor, UpdateQueue } from "./updates.js";

/** One connection of the bridge to the Spool server, joined to one project. */
export interface ProjectLink {
  client: SpoolClient;
  name: string;
  root: string;
  /** Resolves once the connection is back after a drop (false when it did not come back in time). */
  reconnected(timeoutMs: number): Promise<boolean>;
}

/** What the parts of one ACP session share: which run it shows, to which editor, through which connection. */
export interface SessionScope {
  readonly id: string;
  readonly run: string;
  readonly link: ProjectLink;
  readonly editor: Editor;
  readonly log: Logger;
  /** The session's updates, in order. */
  readonly updates: UpdateQueue;
  /** Its foreground state, for an editor that is told it (ACP v2). */
  readonly foreground: Foreground;
  /** Prompt turns so far (a tool call remembers the one it was first seen in). */
  turns(): number;
}

/** One tool call of the run as the editor was shown it. */
export interface ToolView {
  id: string;
  tool: string;
  title: string;
  kind: ToolKind;
  rawInput: Record<string, unknown>;
  /** The producer's log entry (sh, env). */
  path: string | null;
  /** What the person must see before deciding, once it was proposed. */
  facts: ProposalFacts | null;
  /** Its proposal was decided (accepted, rejected, or it ran before the bridge saw it). */
  resolved: boolean;
  /** The editor was shown its final status. */
  settled: boolean;
  /** The producer's status a replayed history reported. */
  known: number | null;
  permission: AbortController | null;
  /** The editor answered; its decision is on its way to the server. */
  deciding: boolean;
  /**
   * The server took the editor's answer (run/resolve succeeded). A list of pending proposals read before it (the
   * catch-up after a reconnect) is stale for this one: it is not asked again while run/resolved is on its way.
   */
  answered: boolean;
  output: CommandOutput | null;
  /** The prompt turn it was first seen in (0: before any, e.g. replayed by a load). */
  turn: number;
}

/** A Spool error as an ACP error the editor shows. */
export function acpError(error: unknown): RequestError {
  if (error instanceof RequestError) return error;
  if (error instanceof SpoolRpcError) {
    if (error.errorCode === "INVALID_PARAMS") return RequestError.invalidParams(error.data, error.message);
    return new RequestError(-32603, error.message, error.data);
  }
  if (error instanceof ConnectionClosedError) return new RequestError(-32603, `The connection to the Spool server closed: ${error.message}`);
  return new RequestError(-32603, error instanceof Error ? error.message : String(error));
}
