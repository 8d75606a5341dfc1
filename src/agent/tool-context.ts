import type { Core } from "../core/index.js";
import type { RunRow } from "../core/views.js";
import type { ProjectRef } from "../rpc/connection-context.js";

/** What a tool call runs with: the core, where it runs, and the loop it belongs to. */
export interface ToolContext {
  core: Core;
  project: ProjectRef;
  run: RunRow;
  loopId: number;
  /** The loop's number in the run (what clients see). */
  loopSeq: number;
  mode: "ask" | "act";
  /** The W3C trace context the loop's prompt came with: the traces of its proposals continue it. */
  traceparent?: string | undefined;
  /** Tells clients (`run/tool`) that the call is being run, or waits on its proposal. */
  announce(status: "running" | "waiting", path: string | null): void;
  yieldMs: number;
  /** How long `kill` waits for the command to end after its signal. */
  killWaitMs: number;
  budgetTokens: number;
  signal: AbortSignal;
}
