import type { LoopRow, RunRow } from "../core/views.js";
import { serviceKey } from "../plugins/services.js";
import type { ProjectRef } from "../rpc/connection-context.js";

/** What run methods need from the agent loop plugin; without the plugin, runs with a model are UNSUPPORTED. */
export interface AgentLoop {
  /** Throws a clear error for an unknown model alias or one whose provider is not loaded. */
  checkModel(alias: string): void;
  /** Throws LIMIT_EXCEEDED when the run holds as many prompts queued or under way as it may (limits.maxOpenLoopsPerRun). */
  checkRoom(run: RunRow): Promise<void>;
  /**
   * Queues `prompt` as the run's next loop (checkRoom first) and starts driving it; an untitled run takes its title from it.
   * `traceparent`: the caller's W3C trace context, which the traces of the loop's proposals continue.
   */
  prompt(project: ProjectRef, run: RunRow, prompt: string, mode: "ask" | "act", traceparent?: string): Promise<LoopRow>;
  /** A run paused at its budget goes on from where it was (its budget now past what it spent); false when it was not paused. */
  resume(project: ProjectRef, run: RunRow): Promise<boolean>;
  /**
   * Whether a paused run's budget is still reached where it paused (before a model call, or before proposing a
   * command); when the limit it is at changed, its state says the new one.
   */
  stillPaused(project: ProjectRef, run: RunRow): Promise<boolean>;
  /** Stops the run: model call, queued loops, pending proposals (rejected), running producers (cancelled). */
  abort(project: ProjectRef, run: RunRow, reason: string): Promise<{ run: RunRow; rejected: string[]; cancelled: string[] }>;
}

export const AGENT_LOOP = serviceKey<AgentLoop>("agent-loop");
