import type { TransportKind } from "../../protocol/roles.js";
import type { ConnectionHandle, ProjectRef } from "../../rpc/connection-context.js";
import { producerFromRow } from "../../store/producer-row.js";
import { lineCount } from "../../store/repositories.js";
import type { EntryRow, RunRow } from "../../store/schema.js";
import type { FinishResult, ProducerTarget } from "../deps.js";
import { type Outcome, outcomeAttributes, outcomeStatus, summaryLine } from "../producers/outcome.js";
import { notAccepted, notOwner } from "../refusals.js";
import { ENTRY, OPEN_CHANNEL } from "../status.js";
import { forget } from "./ownership.js";
import { follow, METHOD, producerState, requireLog, type Stage } from "./stage.js";
import type { Caller, Operation } from "./transitions.js";

/*
 * The end of a producer: complete or abort (by its owner), cancel (by anyone in the project), lose (by the
 * server, its owner gone). Each asks the table, then closes every open channel once.
 */

/** complete or abort, by the owner. A producer that has already finished reports its status and changes nothing. */
export async function finishByOwner(
  stage: Stage,
  caller: ConnectionHandle,
  project: ProjectRef,
  target: ProducerTarget,
  outcome: Outcome & { kind: "completed" | "aborted" },
): Promise<FinishResult> {
  const { run, log } = await requireLog(stage.deps.repos, project, target.run, target.path);
  const operation = outcome.kind === "completed" ? "complete" : "abort";
  return finishAs(stage, operation, stage.owners.isOwner(log.id, caller) ? "owner" : "other", project, run, log, outcome);
}

/**
 * cancel, by anyone in the project (`by`: who, when known): channels 499 and `stream/cancelled`, so the owner
 * kills the work. The duration recorded runs from the acceptance (when its channels opened) to now: the
 * owner's own figure never arrives, as a finished producer takes no more.
 */
export async function cancel(
  stage: Stage,
  project: ProjectRef,
  target: ProducerTarget,
  reason: string | undefined,
  by?: string,
  via?: TransportKind,
): Promise<FinishResult> {
  const { run, log } = await requireLog(stage.deps.repos, project, target.run, target.path);
  const opened = log.status === ENTRY.done ? (await stage.deps.repos.entries.listChannels(log.id)).map((c) => c.created_at) : [];
  const duration = opened.length > 0 ? Math.max(0, Date.now() - Math.min(...opened)) : undefined;
  const result = await finishAs(stage, "cancel", "owner", project, run, log, { kind: "cancelled", reason, duration, by, via });
  // The owner is told why in words, given or not.
  if (result.changed) stage.effects.cancelled(project, run, log, reason ?? (by ? `cancelled by ${by}` : "cancelled"));
  return result;
}

/** lose: the server ends a producer whose owner is gone (runner lost, owner lost, interrupted by a restart, failed dispatch). */
export async function lose(stage: Stage, producerId: number, reason: string): Promise<FinishResult | null> {
  const repos = stage.deps.repos;
  const log = await repos.entries.findEntryById(producerId);
  const run = log && (await repos.runs.findRunById(log.run_id));
  const project = run && (await repos.projects.findProjectById(run.project_id));
  if (!log || !run || !project) return null;
  return finishAs(stage, "lose", "owner", { id: project.id, name: project.name, root: project.root }, run, log, { kind: "aborted", reason });
}

/** A finishing operation as the table has it: refused, reported as it stands (already finished), or done. */
async function finishAs(
  stage: Stage,
  operation: Operation,
  caller: Caller,
  project: ProjectRef,
  run: RunRow,
  log: EntryRow,
  outcome: Outcome,
): Promise<FinishResult> {
  const { state, channels } = await producerState(stage.deps.repos, log);
  const cell = follow(state, operation, caller, (error) => (error === "NOT_OWNER" ? notOwner(log.path, METHOD[operation]!) : notAccepted(log)));
  if (cell.to === state) return finishResult(log, channels, false, channels[0]?.status ?? log.status);
  return finish(stage, project, run, log, outcome, state === "queued" ? ENTRY.queued : ENTRY.streaming);
}

/**
 * Ends every open channel with the outcome's status, rewrites the log entry
 * to one line, ends watchers and announces it; a second call changes nothing.
 */
async function finish(stage: Stage, project: ProjectRef, run: RunRow, log: EntryRow, outcome: Outcome, previous: number): Promise<FinishResult> {
  const { deps } = stage;
  const status = outcomeStatus(outcome);
  const details = outcomeAttributes(outcome);
  const { command } = producerFromRow(log);
  const { changed, channels } = await deps.repos.producers.closeChannels(log, {
    open: OPEN_CHANNEL,
    status,
    channelAttributes: details,
    log: (rows) => ({
      set: {
        ...details,
        // What an allowlist command reached and was refused: on the log entry only, for the record.
        ...("egress" in outcome && outcome.egress ? { egressReached: outcome.egress } : {}),
        status,
        channels: Object.fromEntries(rows.map((r) => [String(r.channel), { path: r.path, bytes: r.bytes, lines: lineCount(r) }])),
      },
      body: summaryLine(command, outcome, rows),
    }),
  });
  if (changed) {
    forget(stage, log.id);
    if (deps.bus.shared) await deps.repos.cluster.dropOwner(log.id);
    await stage.effects.finished(project, run, log, channels, status, outcome, previous);
  }
  return finishResult(log, channels, changed, status);
}

function finishResult(log: EntryRow, channels: EntryRow[], changed: boolean, status: number): FinishResult {
  return {
    path: log.path,
    status: channels[0]?.status ?? status,
    changed,
    channels: channels.map((c) => ({ channel: c.channel!, path: c.path, status: c.status, bytes: c.bytes, lines: lineCount(c) })),
  };
}
