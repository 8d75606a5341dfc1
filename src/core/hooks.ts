import type { ConnectionHandle, ProjectRef } from "../rpc/connection-context.js";
import type { EntryRow, RunRow } from "../store/schema.js";

/**
 * The closed list of event hooks. Registering a name not listed here is an
 * error; PLUGINS.md's hook table is generated from HOOK_DOCS.
 */
export interface HookPayloads {
  "server:started": { url: string };
  "server:stopping": Record<string, never>;
  "connection:opened": { connection: ConnectionHandle };
  "connection:initialized": { connection: ConnectionHandle; project: ProjectRef };
  "connection:closed": { connection: ConnectionHandle };
  "run:created": { project: ProjectRef; run: RunRow };
  "run:status": { project: ProjectRef; run: RunRow; previous: number };
  "entry:status": { projectId: number; run: RunRow; entry: EntryRow; previous: number | null };
  "producer:started": { projectId: number; run: RunRow; log: EntryRow; runner: string; process: Record<string, unknown> };
}

export type HookName = keyof HookPayloads;

export const HOOK_DOCS: Record<HookName, string> = {
  "server:started": "The server listens; payload has its URL.",
  "server:stopping": "Shutdown began; connections are about to close.",
  "connection:opened": "A transport connected (not yet initialized).",
  "connection:initialized": "A connection called `initialize` and joined a project.",
  "connection:closed": "A connection went away; per-connection state should be released.",
  "run:created": "A run was created.",
  "run:status": "A run's status changed.",
  "entry:status": "An entry was created (previous = null) or changed status.",
  "producer:started": "An accepted producer's owner began running it (`runner`, and `process`: backend, pid, container or host).",
};

/** The closed list of filters: each transforms a value, in ascending priority order. */
export interface FilterValues {
  /** The text the model sees of an entry body, after the built-in cleaning. */
  "entry:model-view": { text: string; path: string };
  /** A proposal before it is stored: may rewrite the command or throw to refuse it. */
  "proposal:create": { tool: string; command: string; cwd: string | null; env: Record<string, string> };
  /** The OpenRPC document `rpc.discover` returns. */
  "rpc:discover": Record<string, unknown>;
}

export type FilterName = keyof FilterValues;

export const FILTER_DOCS: Record<FilterName, string> = {
  "entry:model-view": "Rewrites the cleaned text the model sees of an entry (`{text, path}`).",
  "proposal:create": "Sees a proposal (`{tool, command, cwd, env}`) before it is stored; may rewrite it or throw a SpoolError to refuse it.",
  "rpc:discover": "Rewrites the OpenRPC document returned by `rpc.discover`.",
};

export const HOOK_NAMES = Object.keys(HOOK_DOCS) as HookName[];
export const FILTER_NAMES = Object.keys(FILTER_DOCS) as FilterName[];
