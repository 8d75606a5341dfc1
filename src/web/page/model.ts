import type { ResultOf } from "../../protocol/methods/index.js";
import type { SpoolNotifications } from "../../protocol/notifications.js";
import type { Channel, Producer } from "../../protocol/views.js";
import { ENTRY, OPEN_RUN, RUN, runStatusWord } from "./format.js";

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
 * A run's status as a word; a run without a model at 200 is idle (fed by hand), not finished. With the
 * number of its proposals waiting for a decision (`pending`), a run at 202 with none waits on no one: the
 * command it accepted runs while its turn waits for the result, so it is running.
 */
export function runWord(run: Run, pending?: number): string {
  if (run.model === null && run.status === RUN.done) return "idle";
  if (run.status === RUN.waiting && pending === 0) return runStatusWord(RUN.running);
  return runStatusWord(run.status);
}

/** Whether a producer's output is still being written (a channel at 102). */
export const isRunning = (p: Producer) => p.channels.some((c) => c.status === ENTRY.streaming);
