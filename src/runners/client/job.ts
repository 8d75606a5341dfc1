import type { RunnerExecParams } from "../../protocol/runner.js";
import type { ExecResult, ExecutionControl } from "../backend.js";
import type { ChannelSender } from "./channel-sender.js";

/** A command a runner took, while it runs: its channels' senders, its controls, how it is being stopped. */
export interface Job {
  params: RunnerExecParams;
  controller: AbortController;
  senders: Map<number, ChannelSender>;
  /** The server finished the producer (cancel, runner lost): nothing more is sent for it. */
  closedByServer: boolean;
  /** Why the runner itself stopped the work, when it did. */
  stoppedBecause?: string;
  done: Promise<void>;
  /** Input, signals and resizes for the running command (absent when its backend offers none). */
  control?: ExecutionControl;
  /** The last input seq written: a repeat (the server's relay retried after a reconnect) is acknowledged without writing again. */
  inputSeq: number;
  /** The command has ended: controls are refused as STREAM_CLOSED. */
  ended: boolean;
  /**
   * Resolves once the process is located: a remote wrapper prints its pid first, and a terminal would
   * echo input typed before that into the line the pid is read from.
   */
  located: Promise<unknown>;
}

/** Tries at finishing a producer when the server answers with an error it may get over (100 ms, 200 ms, … apart). */
export const FINISH_ATTEMPTS = 6;

/** A job's key in the runner's maps: its run and path. */
export const jobKey = (run: string, path: string) => `${run}\u0000${path}`;

/** How a command ended, for people: "exit 0", "signal SIGKILL", "timed out after 1000 ms", "stopped: …". */
export function describeOutcome(outcome: ExecResult, job: Job): string {
  if (outcome.timedOut) return `timed out after ${job.params.timeoutMs} ms`;
  if (job.closedByServer) return "cancelled on the server";
  if (outcome.cancelled) return `stopped: ${job.stoppedBecause ?? "cancelled by the runner"}`;
  if (outcome.exitCode !== null) return `exit ${outcome.exitCode}`;
  return outcome.signal ? `signal ${outcome.signal}` : "exit unknown";
}
