import type { ErrorName } from "../../rpc/errors.js";
import { RUN } from "../status.js";

/*
 * What a budget does to a run, as data: the run statuses each of its operations may start from and the status it
 * leaves the run (and its open loop) at. `pause`: a budget was reached before a model call; `resume`: a person
 * raised the budget past what was spent. (A paused run is stopped like any open run, by run/abort.) The driver and
 * run/budget ask this table before they change a status; test/core/run-transitions.test.ts drives each cell.
 */

export type RunOperation = "pause" | "resume";

export const RUN_TRANSITIONS: Record<RunOperation, { from: readonly number[]; to: number; refused: ErrorName }> = {
  pause: { from: [RUN.queued, RUN.running, RUN.waiting], to: RUN.paused, refused: "CONFLICT" },
  resume: { from: [RUN.paused], to: RUN.running, refused: "CONFLICT" },
};

/** The status `operation` leaves a run at from `status`, or undefined when the table refuses it. */
export function runTransition(status: number, operation: RunOperation): number | undefined {
  const cell = RUN_TRANSITIONS[operation];
  return cell.from.includes(status) ? cell.to : undefined;
}
