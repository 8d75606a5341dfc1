import type { ResultOf } from "../../protocol/methods/index.js";
import type { SpoolNotifications } from "../../protocol/notifications.js";
import { runState } from "../../protocol/shown-state.js";
import type { Channel, Producer } from "../../protocol/views.js";
import { ENTRY, OPEN_RUN } from "./format.js";

export { producersOf } from "../../protocol/views.js";
export type { Channel, Producer };

/** What the page holds, in the shapes the server sends. */
export type Project = ResultOf<"project/list">["projects"][number];
export type Run = ResultOf<"run/list">["runs"][number];
export type Entry = ResultOf<"entry/list">["entries"][number];
export type Message = ResultOf<"run/history">["messages"][number];
export type Runner = ResultOf<"runner/list">["runners"][number];
export type Proposal = SpoolNotifications["run/proposal"];
export type ToolNotice = SpoolNotifications["run/tool"];

export const isOpen = (status: number) => OPEN_RUN.includes(status);

/**
 * A run's state as every client words it (runState, src/protocol/shown-state.ts): `pending` is how many of its
 * proposals the page knows to wait for a decision (it follows run/proposal and run/resolved live), else the
 * count the run came with.
 */
export function runWord(run: Run, pending?: number): string {
  return runState(run, pending ?? run.pending);
}

/** Whether a producer's output is still being written (a channel at 102). */
export const isRunning = (p: Producer) => p.channels.some((c) => c.status === ENTRY.streaming);
