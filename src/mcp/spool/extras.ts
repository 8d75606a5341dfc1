import type { CallToolResult } from "@modelcontextprotocol/server";
import type { z } from "zod";

/*
 * What an embedder adds to Spool's MCP surface beside its own tools and resources, on the same table and paths
 * for both revisions (tools.ts, resources.ts): the official conformance suite's fixture tools and resources are
 * the one user (test/mcp/conformance-fixture.ts, test code: the product registers nothing here).
 */

/** What a tool call gets besides its arguments: its cancel, its `_meta` (a progress token) and its notifications. */
export interface ExtraCall {
  readonly signal: AbortSignal;
  readonly _meta?: Record<string, unknown> | undefined;
  /** A notification related to the call (progress, a log message), on the call's stream. */
  sendNotification(notification: { method: string; params?: Record<string, unknown> }): Promise<void>;
  /** A request to the client (sampling, elicitation) and its result: a 2025-11-25 session's only (2026-07-28 refuses it). */
  sendRequest(request: { method: string; params?: Record<string, unknown> }): Promise<Record<string, unknown>>;
}

/** A tool besides Spool's: its description and argument shape as tools/list shows them, and what a call does. */
export interface ExtraTool {
  title?: string;
  description: string;
  shape: z.ZodRawShape;
  run(args: Record<string, unknown>, call: ExtraCall): Promise<CallToolResult>;
}

/** One resource's contents as resources/read answers them. */
export type ExtraContents = ({ uri: string; mimeType?: string } & ({ text: string } | { blob: string }))[];

export interface McpExtras {
  tools?: Readonly<Record<string, ExtraTool>>;
  resources?: {
    /** Listed after the run's commands (resources/list). */
    listed: readonly { uri: string; name: string; mimeType?: string; description?: string }[];
    /** Listed after Spool's template (resources/templates/list). */
    templates: readonly { uriTemplate: string; name: string; mimeType?: string; description?: string }[];
    /** The contents of `uri`, or null when it is none of these resources (Spool's own are then looked for); one may be subscribed to (it never changes). */
    read(uri: string): ExtraContents | null;
  };
}
